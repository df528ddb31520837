"""The append-only audit log: what happened to every report, in order, with tamper evidence.

There is no update or delete path in code, and the schema's triggers refuse both. Each row's
``hash`` covers the previous row's hash and the row's own content, so editing any row breaks the
chain from that row on (``AuditLog.verify``). Details pass through ``redact`` before they are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlconnector.redact import redact

GENESIS = "0" * 64


class AuditEvent(StrEnum):
    """Events written to the audit log (extend; never rename: users filter on them)."""

    INITIALIZED = "initialized"
    PULL_STARTED = "pull_started"
    PULL_FINISHED = "pull_finished"
    PULL_FAILED = "pull_failed"
    PULLED = "pulled"
    CHANGED = "changed"
    CHANGED_AFTER_POSTING = "changed_after_posting"
    INVALID = "invalid"
    PLANNED = "planned"
    BLOCKED = "blocked"
    QUEUED = "queued"
    NOTE = "note"
    SENT = "sent"
    REQUERIED = "requeried"
    POSTED = "posted"
    WARNING = "warning"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    RECOVERED = "recovered"
    REPLAYED = "replayed"
    STAMPED_EXPORTED = "stamped_exported"
    MAPPING_CHANGED = "mapping_changed"
    LISTS_REFRESHED = "lists_refreshed"
    SESSION_OPENED = "session_opened"
    SESSION_CLOSED = "session_closed"
    SESSION_ERROR = "session_error"
    LOGIN_REFUSED = "login_refused"
    MESSAGE_SENT = "message_sent"
    MESSAGE_ANSWERED = "message_answered"
    LATE_ANSWER = "late_answer"
    DUPLICATE_IN_QUICKBOOKS = "duplicate_in_quickbooks"
    REIMBURSED = "reimbursed"  # Expensify shows the employee paid (a bill payment may follow)
    PAID_IN_QUICKBOOKS = "paid_in_quickbooks"  # the bills were already paid in QuickBooks: no payment posted
    ALERT_SENT = "alert_sent"  # a digest of what needs a person went out (channels, counts, item keys)


@dataclass(frozen=True)
class AuditEntry:
    """A row to append (see :meth:`AuditLog.append_many`)."""

    event: AuditEvent | str
    actor: str
    report_id: str | None = None
    posting_id: int | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class AuditRow:
    """One audit row as stored."""

    id: int
    at: str
    actor: str
    event: str
    report_id: str | None
    posting_id: int | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view of the row."""
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor,
            "event": self.event,
            "report_id": self.report_id,
            "posting_id": self.posting_id,
            "detail": self.detail,
            "hash": self.hash,
        }


def _row_hash(prev_hash: str, at: str, actor: str, event: str, report_id: str | None,
              posting_id: int | None, detail_json: str) -> str:
    material = json.dumps([prev_hash, at, actor, event, report_id, posting_id, detail_json])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _where(report_id: str | None, since: str | None, event: str | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for clause, value in (("report_id = ?", report_id), ("at >= ?", since), ("event = ?", event)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class AuditLog:
    """Appends to and reads the audit table of one connection.

    Appends should happen inside the caller's ``Store.atomic()`` block so the state change and its
    audit row commit together; ``append`` itself never commits.
    """

    def __init__(self, conn: sqlite3.Connection, now: Callable[[], dt.datetime] = _utcnow) -> None:
        self._conn = conn
        self._now = now

    def append(
        self,
        event: AuditEvent | str,
        *,
        actor: str,
        report_id: str | None = None,
        posting_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Write one audit row (redacted) chained to the previous one; returns its id."""
        return self.append_many([AuditEntry(event, actor, report_id, posting_id, detail)])

    def append_many(self, entries: Sequence[AuditEntry]) -> int:
        """Write several rows in order, reading the chain's head once; returns the last row's id.

        Call it inside the caller's transaction (``Store.atomic``), which also keeps another process
        from appending between the read of the head and the inserts.
        """
        last = self._conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev_hash = last[0] if last else GENESIS
        at = self._now().isoformat(timespec="milliseconds")
        row_id = 0
        for entry in entries:
            detail_json = json.dumps(redact(dict(entry.detail or {})), sort_keys=True, default=str)
            event_text = str(entry.event)
            row_hash = _row_hash(prev_hash, at, entry.actor, event_text, entry.report_id, entry.posting_id,
                                 detail_json)
            cursor = self._conn.execute(
                "INSERT INTO audit (at, actor, event, report_id, posting_id, detail, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (at, entry.actor, event_text, entry.report_id, entry.posting_id, detail_json, prev_hash, row_hash),
            )
            prev_hash, row_id = row_hash, int(cursor.lastrowid or 0)
        return row_id

    def rows(
        self,
        *,
        report_id: str | None = None,
        since: str | None = None,
        event: str | None = None,
        limit: int | None = None,
    ) -> list[AuditRow]:
        """Audit rows in order, filtered by report, start time (ISO text) and event."""
        where, params = _where(report_id, since, event)
        sql = "SELECT id, at, actor, event, report_id, posting_id, detail, prev_hash, hash FROM audit" + where
        if limit is not None:
            # The newest N rows, still returned oldest first.
            sql += " ORDER BY id DESC LIMIT ?"
            params.append(limit)
        rows = [
            AuditRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8])
            for r in self._conn.execute(sql + ("" if limit is not None else " ORDER BY id"), params)
        ]
        return rows[::-1] if limit is not None else rows

    def count(self, *, report_id: str | None = None, since: str | None = None, event: str | None = None) -> int:
        """How many rows :meth:`rows` would return without a limit."""
        where, params = _where(report_id, since, event)
        return int(self._conn.execute("SELECT COUNT(*) FROM audit" + where, params).fetchone()[0])

    def get(self, row_id: int) -> AuditRow | None:
        """One row by id, or None."""
        r = self._conn.execute(
            "SELECT id, at, actor, event, report_id, posting_id, detail, prev_hash, hash FROM audit WHERE id = ?",
            (row_id,),
        ).fetchone()
        return AuditRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8]) if r else None

    def events(self) -> list[str]:
        """The distinct event names present in the log."""
        return [str(r[0]) for r in self._conn.execute("SELECT DISTINCT event FROM audit ORDER BY event")]

    def highest_ids(self) -> tuple[int, int]:
        """(the highest id present, the highest id ever written): rows cut off the end show as a gap."""
        highest = int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM audit").fetchone()[0])
        row = self._conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        return highest, int(row[0]) if row else 0

    def verify(self) -> int | None:
        """The id of the first row whose hash chain is broken, or None when the log is intact."""
        prev_hash = GENESIS
        query = "SELECT id, at, actor, event, report_id, posting_id, detail, prev_hash, hash FROM audit ORDER BY id"
        for row in self._conn.execute(query):
            expected = _row_hash(prev_hash, row[1], row[2], row[3], row[4], row[5], row[6])
            if row[7] != prev_hash or row[8] != expected:
                return int(row[0])
            prev_hash = row[8]
        return None
