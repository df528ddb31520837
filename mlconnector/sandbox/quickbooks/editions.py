"""Which request elements each QuickBooks edition (US, CA, UK, AU) accepts, from Intuit's annotated reference.

``qbxml/annotated/qbxmlops130.xml`` marks every field "not in QBD|QBCA|QBUK|QBAU|QBOE" as it applies (QBD is
the US desktop SDK). The simulator refuses a request that uses an element its edition lacks, as that
edition's QuickBooks would, so a Canadian session is checked as Canadian.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from lxml import etree

EDITION_CODES = {"US": "QBD", "CA": "QBCA", "UK": "QBUK", "AU": "QBAU"}

_NOT_IN = re.compile(r"not in ([A-Z|]+)")

Path_ = tuple[str, ...]


@lru_cache(maxsize=4)
def unavailable_elements(annotated: str) -> dict[Path_, frozenset[str]]:
    """Each request element's path (from its ``...Rq``) and the edition codes that lack it.

    An element annotated on one branch of an OR and not on another counts as missing only where every
    occurrence says so: the simulator must not refuse what some edition's QuickBooks accepts.
    """
    parser = etree.XMLParser(remove_comments=False, recover=True, huge_tree=True, resolve_entities=False)
    root = etree.parse(annotated, parser).getroot()
    found: dict[Path_, frozenset[str]] = {}
    for path, element in _request_elements(root):
        missing = _missing_in(element)
        found[path] = found[path] & missing if path in found else missing
    return {path: codes for path, codes in found.items() if codes}


def unavailable_in(request: etree._Element, country: str, table: dict[Path_, frozenset[str]]) -> list[str]:
    """The paths of elements in ``request`` (a ``...Rq``) that the edition ``country`` does not accept."""
    code = EDITION_CODES.get(country.upper())
    if code is None:
        return []
    return ["/".join(path) for path, _ in _walk(request, (str(request.tag),)) if code in table.get(path, ())]


def annotated_file(reference_qbxml: Path, version: str) -> Path:
    """The annotated reference for a qbXML version (14.0 and later share the 14.0 file)."""
    major = int(version.split(".")[0])
    return reference_qbxml / "annotated" / ("qbxmlops140.xml" if major >= 14 else "qbxmlops130.xml")


def _request_elements(root: etree._Element) -> Iterator[tuple[Path_, etree._Element]]:
    for msgs in root.iter("QBXMLMsgsRq"):
        for rq in msgs:
            if isinstance(rq.tag, str) and rq.tag.endswith("Rq"):
                yield from _walk(rq, (rq.tag,))


def _walk(element: etree._Element, path: Path_) -> Iterator[tuple[Path_, etree._Element]]:
    for child in element:
        if isinstance(child.tag, str):
            here = (*path, child.tag)
            yield here, child
            yield from _walk(child, here)


def _missing_in(element: etree._Element) -> frozenset[str]:
    """The editions the comment on the element's own line says lack it."""
    first = next(iter(element), None)
    for candidate in (first, element.getnext()):
        if isinstance(candidate, etree._Comment) and candidate.sourceline == element.sourceline:
            match = _NOT_IN.search(candidate.text or "")
            return frozenset(match.group(1).split("|")) if match else frozenset()
    return frozenset()
