"""Intuit's schemas for tests (loaded once per version) and a validation helper."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMA_FILES = {"13.0": "v130/qbxmlops130.xsd", "16.0": "v160/qbxmlops160.xsd"}


@cache
def schema(reference_dir: Path, version: str) -> etree.XMLSchema:
    # Parsed from the file path so the schema's xsd:include files resolve beside it.
    return etree.XMLSchema(etree.parse(str(reference_dir / "qbxml" / SCHEMA_FILES[version])))


def assert_valid(reference_dir: Path, xml: bytes, version: str) -> None:
    doc = etree.fromstring(xml)
    s = schema(reference_dir, version)
    assert s.validate(doc), f"{version}: {s.error_log}\n{xml.decode()[:3000]}"
