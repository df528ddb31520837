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


def summarize(row: AuditRow) -> str:
    """One line saying what the row means; falls back to the detail's key=value pairs."""
    special = _SUMMARIES.get(row.event)
    text = special(row.detail) if special else ""
    if text:
        return text
    return ", ".join(f"{k}={v}" for k, v in sorted(row.detail.items()) if k != "from")


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
