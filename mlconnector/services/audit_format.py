"""Audit rows as text for people and scripts: one-line summaries, JSON and CSV.

Pure functions over :class:`AuditRow`; no store, no console.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mlconnector.store.audit import AuditEvent, AuditRow

CSV_COLUMNS = ("id", "at", "actor", "event", "report_id", "posting_id", "summary", "detail", "hash")


def _join(parts: Iterable[str]) -> str:
    return "; ".join(p for p in parts if p)


def _field(detail: Mapping[str, Any], key: str, label: str | None = None) -> str:
    value = detail.get(key)
    return f"{label or key} {value}" if value not in (None, "") else ""


def _posted(d: Mapping[str, Any]) -> str:
    return _join((_field(d, "txn_id", "TxnID"), _field(d, "edit_sequence", "EditSequence"), _field(d, "total")))


def _failed(d: Mapping[str, Any]) -> str:
    code = d.get("qb_status_code")
    message = d.get("qb_status_message") or d.get("reason") or ""
    return f"QuickBooks {code}: {message}" if code is not None else str(message)


def _sent(d: Mapping[str, Any]) -> str:
    return _join((_field(d, "message_set_id", "message set"), _field(d, "request_id", "request")))


def _requeried(d: Mapping[str, Any]) -> str:
    refs = d.get("references") or {}
    if isinstance(refs, Mapping):
        shown = [
            f"{name} ({info.get('list_id', '?')}/{info.get('edit_sequence', '?')}"
            f"{'' if info.get('is_active', True) else ', inactive'})"
            for name, info in refs.items()
            if isinstance(info, Mapping)
        ]
        return ", ".join(shown)
    return ""


def _mapping(d: Mapping[str, Any]) -> str:
    old, new = d.get("old"), d.get("new")
    what = f"{d.get('kind', '?')} {d.get('source', '?')!s}"
    if old is None:
        return f"{what} → {new}"
    if new is None:
        return f"{what}: removed (was {old})"
    return f"{what}: {old} → {new}"


_SUMMARIES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    AuditEvent.POSTED: _posted,
    AuditEvent.RECOVERED: lambda d: _join((_posted(d), _field(d, "how", "by"))),
    AuditEvent.FAILED: _failed,
    AuditEvent.BLOCKED: lambda d: str(d.get("reason", "")),
    AuditEvent.SENT: _sent,
    AuditEvent.IN_DOUBT: lambda d: _join((_sent(d), str(d.get("reason", "")))),
    AuditEvent.REQUERIED: _requeried,
    AuditEvent.MAPPING_CHANGED: _mapping,
    AuditEvent.PULLED: lambda d: _join((_field(d, "total"), _field(d, "expenses"), _field(d, "status"))),
    AuditEvent.REPLAYED: lambda d: _join((str(d.get("what", "")), _field(d, "previous_failure", "it had failed:"),
                                          str(d.get("reason") or ""))),
    AuditEvent.CHANGED: lambda d: f"total {d.get('old_total')} → {d.get('new_total')}",
    AuditEvent.CHANGED_AFTER_POSTING: lambda d: f"posted {d.get('posted_total')}, now {d.get('new_total')}: "
    f"{d.get('action', '')}",
}


def _windows(d: Mapping[str, Any]) -> str:
    """A pull's export windows in words: "approved after 2026-03-29; 2026-03-29 to 2026-03-30"."""
    shown = []
    for w in d.get("windows") or []:
        if isinstance(w, Mapping):
            if w.get("approved_after"):
                shown.append(f"approved after {w['approved_after']}")
            elif w.get("start") or w.get("end"):
                shown.append(f"{w.get('start') or '…'} to {w.get('end') or 'today'}")
    reports = d.get("reports") or []
    if reports:
        shown.append("reports " + ", ".join(str(r) for r in reports))
    return _join((_field(d, "pull_id", "pull"), "; ".join(shown)))


def _value(value: Any) -> str:
    """A detail value as text: lists and objects as compact JSON, never Python's repr."""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


_SUMMARIES[AuditEvent.PULL_STARTED] = _windows
# Where the report went: its RefNumber in QuickBooks (a journal entry's or a payment's is derived from the
# report ID, at most 11 characters), kind, part and total.
_SUMMARIES[AuditEvent.QUEUED] = lambda d: _join((
    _field(d, "ref_number", "RefNumber"), str(d.get("mode", "")).replace("_", " "), _field(d, "part"),
    _field(d, "lines"), _field(d, "total"), str(d.get("why") or d.get("reason") or "")))
_SUMMARIES[AuditEvent.REIMBURSED] = lambda d: _join((
    f"reimbursed in Expensify{' by ACH' if d.get('ach') else ''}", _field(d, "reimbursed", "on")))
_SUMMARIES[AuditEvent.PAID_IN_QUICKBOOKS] = lambda d: _join((
    str(d.get("action", "")),
    "bills " + ", ".join(f"{b.get('ref_number') or b.get('txn_id')} (TxnID {b.get('txn_id')})"
                         for b in d.get("bills") or [] if isinstance(b, Mapping))))


def summarize(row: AuditRow) -> str:
    """One line saying what the row means; falls back to the detail's key=value pairs."""
    special = _SUMMARIES.get(row.event)
    text = special(row.detail) if special else ""
    if text:
        return text
    return ", ".join(f"{k}={_value(v)}" for k, v in sorted(row.detail.items()) if k != "from")


def rows_to_json(rows: Iterable[AuditRow]) -> str:
    """A JSON array of rows (with a ``summary`` per row)."""
    return json.dumps([{**r.as_dict(), "summary": summarize(r)} for r in rows], indent=2, default=str)


def rows_to_csv(rows: Iterable[AuditRow]) -> str:
    """CSV with a header; ``detail`` is a JSON cell so nothing is lost."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            (r.id, r.at, r.actor, r.event, r.report_id or "", r.posting_id or "", summarize(r),
             json.dumps(r.detail, sort_keys=True, default=str), r.hash)
        )
    return out.getvalue()
