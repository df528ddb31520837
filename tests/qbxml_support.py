"""Intuit's schemas for tests (loaded once per version) and a validation helper."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from mlconnector.sandbox.quickbooks.editions import EDITION_CODES, annotated_file, unavailable_elements, unavailable_in

SCHEMA_FILES = {"13.0": "v130/qbxmlops130.xsd", "16.0": "v160/qbxmlops160.xsd"}


@cache
def schema(reference_dir: Path, version: str) -> etree.XMLSchema:
    # Parsed from the file path so the schema's xsd:include files resolve beside it.
    return etree.XMLSchema(etree.parse(str(reference_dir / "qbxml" / SCHEMA_FILES[version])))


def assert_valid(reference_dir: Path, xml: bytes, version: str) -> None:
    """Valid against the schema of its version, and uses only elements every desktop edition accepts.

    ml-connector sends one request set to US, Canadian, UK and Australian company files, so each
    element must be one Intuit's annotated reference does not mark "not in" any of them.
    """
    doc = etree.fromstring(xml)
    s = schema(reference_dir, version)
    assert s.validate(doc), f"{version}: {s.error_log}\n{xml.decode()[:3000]}"
    table = unavailable_elements(str(annotated_file(reference_dir / "qbxml", version)))
    for country in EDITION_CODES:
        lacking = [path for rq in doc.iterfind("QBXMLMsgsRq/*") for path in unavailable_in(rq, country, table)]
        assert lacking == [], f"not in the {country} edition: {lacking}"
