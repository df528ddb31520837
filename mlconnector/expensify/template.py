"""The FreeMarker templates shipped as package data (``templates/*.ftl``)."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

EXPORT_MARKER = "mlconnector-export v1"
STAMP_MARKER = "mlconnector-stamp v1"


@cache
def _read(name: str) -> str:
    return files("mlconnector.expensify").joinpath("templates", name).read_text(encoding="utf-8")


def export_template() -> str:
    """The export template: one JSON object per report per line, then a trailer line."""
    return _read("export.ftl")


def stamp_template() -> str:
    """The tiny template of the stamping job (its output is never downloaded)."""
    return _read("stamp.ftl")
