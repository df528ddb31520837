"""A Python emulation of ``expensify/templates/export.ftl`` (fast enough for 10,000 reports).

Each helper mirrors one macro of the template, including its quirks: a missing string becomes
``""``, a missing number or boolean ``null``, a number given as text stays text. A test renders
awkward data with real FreeMarker and with this module and checks that both parse to the same
reports, so the simulator cannot drift from what Expensify would print.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

REPORT_FIELDS = (
    "reportID", "reportName", "status", "accountEmail", "submitterName", "currency", "total", "policyID",
    "policyName", "created", "submitted", "approved", "reimbursed", "isACHReimbursed",
)


def _c(number: int | float) -> str:
    """FreeMarker's ``?c``: no grouping, no exponent for ordinary values, ``1234.0`` as ``1234``."""
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return repr(number) if isinstance(number, float) else str(number)


def s(value: Any) -> str:
    """The ``s`` macro: any value as a JSON string; missing as ``""``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _c(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat() + " 00:00:00"
    return ""


def n(value: Any) -> int | float | str | None:
    """The ``n`` macro: a number, text that is not blank, or null."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value.strip():
        return value
    return None


def b(value: Any) -> bool | str | None:
    """The ``b`` macro: a boolean, text that is not blank, or null."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        return value
    return None


def _expense(e: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "transactionID": s(e.get("transactionID")), "created": s(e.get("created")),
        "modifiedCreated": s(e.get("modifiedCreated")), "merchant": s(e.get("merchant")),
        "modifiedMerchant": s(e.get("modifiedMerchant")), "amount": n(e.get("amount")),
        "modifiedAmount": n(e.get("modifiedAmount")), "convertedAmount": n(e.get("convertedAmount")),
        "currency": s(e.get("currency")), "category": s(e.get("category")), "tag": s(e.get("tag")),
        "comment": s(e.get("comment")), "cardID": s(e.get("cardID")), "cardNumber": s(e.get("cardNumber")),
        "receiptURL": s((e.get("receiptObject") or {}).get("url") if isinstance(e.get("receiptObject"), dict) else ""),
        "reimbursable": b(e.get("reimbursable")), "billable": b(e.get("billable")),
    }


def report_object(report: Mapping[str, Any], report_fields: Sequence[str] = ()) -> dict[str, Any]:
    """What the template prints for one report, as a dict (``report_fields``: the customField keys asked for)."""
    submitter = report.get("submitter")
    out: dict[str, Any] = {
        "reportID": s(report.get("reportID")), "reportName": s(report.get("reportName")),
        "status": s(report.get("status")), "accountEmail": s(report.get("accountEmail")),
        "submitterName": s(submitter.get("fullName") if isinstance(submitter, Mapping) else None),
        "currency": s(report.get("currency")), "total": n(report.get("total")),
        "policyID": s(report.get("policyID")), "policyName": s(report.get("policyName")),
        "created": s(report.get("created")), "submitted": s(report.get("submitted")),
        "approved": s(report.get("approved")), "reimbursed": s(report.get("reimbursed")),
        "isACHReimbursed": b(report.get("isACHReimbursed")),
    }
    custom = report.get("customField")
    out["reportFields"] = {key: s(custom.get(key) if isinstance(custom, Mapping) else None)
                           for key in sorted(report_fields)}
    items = report.get("transactionList")
    out["expenses"] = [_expense(e) for e in items] if isinstance(items, list) else []
    return out


def render_export(reports: Iterable[Mapping[str, Any]], report_fields: Sequence[str] = ()) -> Iterator[str]:
    """The template's output, line by line (each ends with a newline), trailer included."""
    count = 0
    for report in reports:
        count += 1
        line = json.dumps(report_object(report, report_fields), ensure_ascii=False, separators=(",", ":"))
        # ?json_string escapes the Unicode line separators too; json.dumps leaves them raw.
        yield line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n"
    yield json.dumps({"end": True, "reports": count}, separators=(",", ":")) + "\n"


def render_stamp(reports: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The stamping template's output: one report ID per line."""
    for report in reports:
        yield s(report.get("reportID")) + "\n"
