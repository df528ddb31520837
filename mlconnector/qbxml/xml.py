"""The one safe XML parser for qbXML, and serialization with the qbXML headers.

Every qbXML document ml-connector reads goes through :func:`parse_xml`: no entity expansion, no
network, no DTDs, comments dropped, no huge trees. Syntax errors become :class:`QbxmlParseError`.
"""

from __future__ import annotations

import re

from lxml import etree

from mlconnector.errors import QbxmlError, QbxmlParseError
from mlconnector.qbxml import SUPPORTED_VERSIONS

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_SNIPPET = 200


def _parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads (serve uses threads).
    return etree.XMLParser(
        resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False, load_dtd=False
    )


def parse_xml(content: bytes | str) -> etree._Element:
    """Parse a qbXML document safely and return its root element.

    Text (as the Web Connector hands it over SOAP) may carry an XML declaration naming an encoding;
    that declaration is dropped because the text is already decoded.

    Raises:
        QbxmlParseError: the document is empty, not well-formed, or declares a DTD.
    """
    if isinstance(content, str):
        data = _XML_DECLARATION.sub("", content.lstrip("\ufeff"), count=1).encode("utf-8")
    else:
        data = content
    if not data.strip():
        raise QbxmlParseError("the qbXML document is empty", content=content[:_SNIPPET])
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise QbxmlParseError(f"the qbXML document is not well-formed: {exc}", content=content[:_SNIPPET]) from exc
    tree = root.getroottree()
    if tree.docinfo.doctype:
        raise QbxmlParseError("the qbXML document declares a DTD, which is refused", content=content[:_SNIPPET])
    return root


def check_version(version: str) -> str:
    """``version`` if ml-connector builds requests for it.

    Raises:
        QbxmlError: an unsupported qbXML version.
    """
    if version not in SUPPORTED_VERSIONS:
        raise QbxmlError(f"qbXML version {version!r} is not supported (use {' or '.join(SUPPORTED_VERSIONS)})")
    return version


def choose_version(major: int, minor: int = 0) -> str | None:
    """The highest qbXML version ml-connector supports that is at most what the Web Connector reports.

    ``sendRequestXML`` passes ``qbXMLMajorVers``/``qbXMLMinorVers``; None means QuickBooks is too old.
    """
    fitting = [v for v in SUPPORTED_VERSIONS if tuple(int(p) for p in v.split(".")) <= (major, minor)]
    return max(fitting, key=lambda v: tuple(int(p) for p in v.split(".")), default=None)


def to_bytes(root: etree._Element, version: str) -> bytes:
    """Serialize a ``<QBXML>`` tree with the XML declaration and the ``<?qbxml version?>`` header.

    Raises:
        QbxmlError: an unsupported qbXML version.
    """
    check_version(version)
    header = f'<?xml version="1.0" encoding="utf-8"?>\n<?qbxml version="{version}"?>\n'.encode("ascii")
    body: bytes = etree.tostring(root, encoding="utf-8", xml_declaration=False, pretty_print=True)
    return header + body
