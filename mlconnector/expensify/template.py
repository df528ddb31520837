"""The FreeMarker templates shipped as package data (``templates/*.ftl``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.resources import files

from mlconnector.models import report_field_key

EXPORT_MARKER = "mlconnector-export v1"
STAMP_MARKER = "mlconnector-stamp v1"


@cache
def _read(name: str) -> str:
    return files("mlconnector.expensify").joinpath("templates", name).read_text(encoding="utf-8")


def export_template(report_fields: Sequence[str] = ()) -> str:
    """The export template: one JSON object per report per line, then a trailer line.

    ``report_fields``: header-level report fields to bring (Expensify's ``customField.NAME``), named as
    the configuration names them; each prints "" when a report does not have it.
    """
    keys = sorted({report_field_key(name) for name in report_fields if report_field_key(name).strip("_")})
    fields = ",".join(f'"{key}":<@s (report.customField["{key}"])!"" />' for key in keys)
    return _read("export.ftl").replace("<#-- REPORT FIELDS -->", fields)


def stamp_template() -> str:
    """The tiny template of the stamping job (its output is never downloaded)."""
    return _read("stamp.ftl")
