"""Postings in the state file and the one function that moves them between states.

Every state change goes through :func:`transition`, which checks the move against the state machine
of ARCHITECTURE.md and writes the audit row in the same transaction. A posting is ``posted`` only
with a TxnID; nothing ``sent`` or ``in_doubt`` is ever re-queued without a recovery check (callers
pass the evidence in ``detail``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from mlconnector.errors import NotFoundError, StoreError
from mlconnector.models import (
    Line,
    PlannedPosting,
    PostingMode,
    PostingState,
    Side,
    cents_to_decimal,
    decimal_to_cents,
)
from mlconnector.store import Store
from mlconnector.store.audit import AuditEntry, AuditEvent

S = PostingState
ALLOWED: Mapping[PostingState, frozenset[PostingState]] = {
    # QUEUED -> FAILED: QuickBooks cannot read the request ml-connector builds for it.
    S.PLANNED: frozenset({S.QUEUED, S.BLOCKED}),
    S.QUEUED: frozenset({S.SENT, S.BLOCKED, S.FAILED}),
    S.BLOCKED: frozenset({S.QUEUED, S.BLOCKED}),
    S.SENT: frozenset({S.POSTED, S.FAILED, S.IN_DOUBT}),
    S.IN_DOUBT: frozenset({S.POSTED, S.QUEUED, S.FAILED, S.SENT}),
    S.FAILED: frozenset({S.QUEUED, S.BLOCKED}),
    # Only `replay --force`: in doubt, so the next session asks QuickBooks (by RefNumber) before it
    # writes anything, and posts only if the transaction is really absent.
    S.POSTED: frozenset({S.IN_DOUBT}),
}

# Moves allowed only with ``evidence``: QuickBooks itself showed the transaction exists (the late answer
# of an update that was given up, after recovery had queued the posting again).
ON_EVIDENCE: Mapping[PostingState, frozenset[PostingState]] = {
    S.QUEUED: frozenset({S.POSTED}),
    S.BLOCKED: frozenset({S.POSTED}),
    S.FAILED: frozenset({S.POSTED}),
}

EVENT_FOR_STATE: Mapping[PostingState, AuditEvent] = {
    S.PLANNED: AuditEvent.PLANNED,
    S.QUEUED: AuditEvent.QUEUED,
    S.BLOCKED: AuditEvent.BLOCKED,
    S.SENT: AuditEvent.SENT,
    S.IN_DOUBT: AuditEvent.IN_DOUBT,
    S.POSTED: AuditEvent.POSTED,
    S.FAILED: AuditEvent.FAILED,
}

# Columns a transition may set besides the state.
UPDATABLE = frozenset(
    {
        "reason", "request_id", "message_set_id", "txn_id", "edit_sequence", "txn_line_ids",
        "qb_status_code", "qb_status_message",
    }
)


_POSTING_FIELDS = tuple(f.name for f in fields(PlannedPosting))
_LINE_FIELDS = tuple(f.name for f in fields(Line))


def posting_to_json(posting: PlannedPosting) -> str:
    """Serialize a planned posting (Decimals as text, dates ISO): the text asdict() gave, without its deep copies."""
    data = {name: getattr(posting, name) for name in _POSTING_FIELDS}
    data["lines"] = [{name: getattr(line, name) for name in _LINE_FIELDS} for line in posting.lines]
    return json.dumps(data, default=str, sort_keys=True)


def posting_from_json(text: str) -> PlannedPosting:
    """Rebuild a planned posting from :func:`posting_to_json` output."""
    data = json.loads(text)
    lines = tuple(
        Line(**{**ln, "amount": Decimal(ln["amount"]), "side": Side(ln["side"])}) for ln in data.pop("lines")
    )
    return PlannedPosting(
        **{
            **data,
            "mode": PostingMode(data["mode"]),
            "txn_date": dt.date.fromisoformat(data["txn_date"]),
            "lines": lines,
        }
    )


@dataclass(frozen=True)
class PostingRecord:
    """A posting row: the plan (None for a report blocked before it could be planned) and its state."""

    id: int
    report_id: str
    part: int
    part_count: int
    mode: PostingMode
    state: PostingState
    ref_number: str
    total: Decimal
    line_count: int
    reason: str | None
    request_id: str | None
    message_set_id: str | None
    txn_id: str | None
    edit_sequence: str | None
    qb_status_code: int | None
    qb_status_message: str | None
    report_fingerprint: str
    updated_at: str
    posting: PlannedPosting | None


_COLUMNS = (
    "id, report_id, part, part_count, mode, state, ref_number, total_cents, line_count, reason, request_id,"
    " message_set_id, txn_id, edit_sequence, qb_status_code, qb_status_message, report_fingerprint, updated_at, body"
)


def _record(row: Sequence[Any]) -> PostingRecord:
    return PostingRecord(
        id=row[0], report_id=row[1], part=row[2], part_count=row[3], mode=PostingMode(row[4]),
        state=PostingState(row[5]), ref_number=row[6], total=cents_to_decimal(row[7]), line_count=row[8],
        reason=row[9], request_id=row[10], message_set_id=row[11], txn_id=row[12], edit_sequence=row[13],
        qb_status_code=row[14], qb_status_message=row[15], report_fingerprint=row[16], updated_at=row[17],
        posting=posting_from_json(row[18]) if row[18] else None,
    )


def add_posting(
    store: Store,
    posting: PlannedPosting,
    *,
    state: PostingState,
    report_fingerprint: str,
    actor: str,
    reason: str | None = None,
) -> int:
    """Insert a planned posting in ``state`` (queued or blocked) with its audit row; returns its id."""
    now = store.timestamp()
    with store.atomic():
        cursor = store.conn.execute(
            "INSERT INTO postings (report_id, part, part_count, mode, state, ref_number, txn_date, vendor, account,"
            " total_cents, line_count, body, report_fingerprint, reason, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                posting.report_id, posting.part, posting.part_count, posting.mode.value, state.value,
                posting.ref_number, posting.txn_date.isoformat(), posting.vendor, posting.account,
                decimal_to_cents(posting.total), len(posting.lines), posting_to_json(posting), report_fingerprint,
                reason, now, now,
            ),
        )
        posting_id = int(cursor.lastrowid or 0)
        detail: dict[str, Any] = {
            "part": f"{posting.part}/{posting.part_count}", "ref_number": posting.ref_number,
            "total": str(posting.total), "lines": len(posting.lines), "mode": posting.mode.value,
        }
        if reason:
            detail["reason"] = reason
        store.audit.append(EVENT_FOR_STATE[state], actor=actor, report_id=posting.report_id,
                           posting_id=posting_id, detail=detail)
    return posting_id


def add_blocked_report(
    store: Store, report_id: str, *, mode: PostingMode, report_fingerprint: str, reason: str, actor: str
) -> int:
    """Record a report that could not be planned at all (no plan body), blocked with ``reason``."""
    now = store.timestamp()
    with store.atomic():
        cursor = store.conn.execute(
            "INSERT INTO postings (report_id, part, part_count, mode, state, report_fingerprint, reason,"
            " created_at, updated_at) VALUES (?, 1, 1, ?, ?, ?, ?, ?, ?)",
            (report_id, mode.value, S.BLOCKED.value, report_fingerprint, reason, now, now),
        )
        posting_id = int(cursor.lastrowid or 0)
        store.audit.append(AuditEvent.BLOCKED, actor=actor, report_id=report_id, posting_id=posting_id,
                           detail={"reason": reason})
    return posting_id


def transition(
    store: Store,
    posting_id: int,
    to: PostingState,
    *,
    actor: str,
    expect: PostingState | Sequence[PostingState] | None = None,
    event: AuditEvent | None = None,
    detail: Mapping[str, Any] | None = None,
    evidence: str | None = None,
    **fields: Any,
) -> PostingRecord:
    """Move a posting to ``to``, setting ``fields``, with its audit row, in one transaction.

    ``evidence`` (what QuickBooks showed) also allows the moves in :data:`ON_EVIDENCE`, and is audited.

    Raises:
        NotFoundError: no such posting.
        StoreError: the move is not allowed from the posting's current state (or not from ``expect``).
    """
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise ValueError(f"transition cannot set {sorted(unknown)}")
    with store.atomic():
        current = get_posting(store, posting_id)
        allowed_from = (expect,) if isinstance(expect, PostingState) else tuple(expect or ())
        if allowed_from and current.state not in allowed_from:
            raise StoreError(f"posting {posting_id} is {current.state}, not {'/'.join(allowed_from)}")
        on_evidence = evidence is not None and to in ON_EVIDENCE.get(current.state, frozenset())
        if to not in ALLOWED[current.state] and not on_evidence:
            raise StoreError(f"posting {posting_id} cannot go from {current.state} to {to}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        store.conn.execute(
            f"UPDATE postings SET state = ?, updated_at = ?{', ' + assignments if assignments else ''} WHERE id = ?",
            (to.value, store.timestamp(), *fields.values(), posting_id),
        )
        audit_detail = {"from": current.state.value, **{k: v for k, v in fields.items() if v is not None}}
        audit_detail.update(detail or {})
        if evidence is not None:
            audit_detail["evidence"] = evidence
        store.audit.append(event or EVENT_FOR_STATE[to], actor=actor, report_id=current.report_id,
                           posting_id=posting_id, detail=audit_detail)
        return get_posting(store, posting_id)


@dataclass(frozen=True)
class Move:
    """One state change for :func:`transition_many`."""

    posting_id: int
    to: PostingState
    fields: Mapping[str, Any] = field(default_factory=dict)
    detail: Mapping[str, Any] | None = None
    event: AuditEvent | None = None
    expect: PostingState | None = None


def transition_many(store: Store, moves: Sequence[Move], *, actor: str) -> None:
    """Apply many :func:`transition`-style moves in one transaction, each with its audit row.

    The Web Connector handlers move whole batches at once; reading every posting back (as
    ``transition`` does) would cost more than the work itself.

    Raises:
        NotFoundError: a posting does not exist.
        StoreError: a move is not allowed from its posting's current state; nothing is applied.
    """
    if not moves:
        return
    for move in moves:
        unknown = set(move.fields) - UPDATABLE
        if unknown:
            raise ValueError(f"transition cannot set {sorted(unknown)}")
    ids = [m.posting_id for m in moves]
    with store.atomic():
        current: dict[int, tuple[PostingState, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" for _ in chunk)
            for pid, state, report_id in store.conn.execute(
                f"SELECT id, state, report_id FROM postings WHERE id IN ({marks})", chunk
            ):
                current[pid] = (PostingState(state), report_id)
        now = store.timestamp()
        entries: list[AuditEntry] = []
        for move in moves:
            if move.posting_id not in current:
                raise NotFoundError(f"posting {move.posting_id} does not exist")
            state, report_id = current[move.posting_id]
            if move.expect is not None and state is not move.expect:
                raise StoreError(f"posting {move.posting_id} is {state}, not {move.expect}")
            if move.to not in ALLOWED[state]:
                raise StoreError(f"posting {move.posting_id} cannot go from {state} to {move.to}")
            assignments = "".join(f", {name} = ?" for name in move.fields)
            store.conn.execute(
                f"UPDATE postings SET state = ?, updated_at = ?{assignments} WHERE id = ?",
                (move.to.value, now, *move.fields.values(), move.posting_id),
            )
            audit_detail = {"from": state.value, **{k: v for k, v in move.fields.items() if v is not None}}
            audit_detail.update(move.detail or {})
            entries.append(AuditEntry(move.event or EVENT_FOR_STATE[move.to], actor, report_id, move.posting_id,
                                      audit_detail))
            current[move.posting_id] = (move.to, report_id)
        store.audit.append_many(entries)


def get_posting(store: Store, posting_id: int) -> PostingRecord:
    """One posting by id.

    Raises:
        NotFoundError: no such posting.
    """
    row = store.conn.execute(f"SELECT {_COLUMNS} FROM postings WHERE id = ?", (posting_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"posting {posting_id} does not exist")
    return _record(row)


def postings_in(store: Store, *states: PostingState) -> list[PostingRecord]:
    """Postings in any of ``states``, oldest first (report ID, then part)."""
    marks = ",".join("?" for _ in states)
    rows = store.conn.execute(
        f"SELECT {_COLUMNS} FROM postings WHERE state IN ({marks}) ORDER BY id", tuple(s.value for s in states)
    )
    return [_record(r) for r in rows]


def postings_for_report(store: Store, report_id: str) -> list[PostingRecord]:
    """Every posting of one report, by part."""
    rows = store.conn.execute(f"SELECT {_COLUMNS} FROM postings WHERE report_id = ? ORDER BY part", (report_id,))
    return [_record(r) for r in rows]


def delete_unsent_postings(store: Store, report_id: str) -> int:
    """Drop a report's postings that QuickBooks has not seen (before re-planning it); returns how many.

    Raises:
        StoreError: the report has a posting that was sent, is in doubt or was posted.
    """
    with store.atomic():
        seen = store.conn.execute(
            "SELECT COUNT(*) FROM postings WHERE report_id = ? AND state IN (?, ?, ?)",
            (report_id, S.SENT.value, S.IN_DOUBT.value, S.POSTED.value),
        ).fetchone()[0]
        if seen:
            raise StoreError(f"report {report_id} has postings QuickBooks may have; they cannot be re-planned")
        payments = store.conn.execute("SELECT COUNT(*) FROM postings WHERE report_id = ? AND mode = ?",
                                      (report_id, PostingMode.BILL_PAYMENT.value)).fetchone()[0]
        if payments:  # its bills are planned again: their payment follows once they are posted
            store.conn.execute("UPDATE reports SET payment_pending = 1 WHERE report_id = ?", (report_id,))
        return int(store.conn.execute("DELETE FROM postings WHERE report_id = ?", (report_id,)).rowcount)


def ids_in_state(store: Store, posting_ids: Sequence[int], state: PostingState) -> list[int]:
    """Those of ``posting_ids`` still in ``state``, by id."""
    return [int(r[0]) for r in _chunked(
        store, "SELECT id FROM postings WHERE id IN ({marks}) AND state = ? ORDER BY id", posting_ids, state.value)]


def light_in_state(store: Store, posting_ids: Sequence[int],
                   state: PostingState) -> list[tuple[int, str, str | None, str, int]]:
    """(id, report ID, requestID, RefNumber, part) of those still in ``state``, without their bodies."""
    return [(r[0], r[1], r[2], r[3], r[4]) for r in _chunked(
        store, "SELECT id, report_id, request_id, ref_number, part FROM postings WHERE id IN ({marks})"
        " AND state = ? ORDER BY id", posting_ids, state.value)]


def newest_in_doubt_message_set(store: Store) -> str | None:
    """The message set of the posting that went in doubt last (the one error recovery asks about)."""
    row = store.conn.execute(
        "SELECT message_set_id FROM postings WHERE state = ? AND message_set_id IS NOT NULL"
        " ORDER BY updated_at DESC, id DESC LIMIT 1", (S.IN_DOUBT.value,),
    ).fetchone()
    return str(row[0]) if row else None


def ids_with_ref_number(store: Store, ref_number: str) -> list[int]:
    """Postings with this RefNumber (any case), by id."""
    return [int(r[0]) for r in store.conn.execute(
        "SELECT id FROM postings WHERE ref_number = ? COLLATE NOCASE ORDER BY id", (ref_number,))]


def _chunked(store: Store, sql: str, ids: Sequence[int], *tail: Any) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        chunk = list(ids[start:start + 500])
        rows.extend(store.conn.execute(sql.format(marks=",".join("?" for _ in chunk)), (*chunk, *tail)).fetchall())
    return rows


def report_of_posting(store: Store, posting_id: int) -> str | None:
    """The report a posting belonged to, even after it was deleted (re-planned): its audit rows keep it."""
    row = store.conn.execute(
        "SELECT report_id FROM audit WHERE posting_id = ? AND report_id IS NOT NULL ORDER BY id LIMIT 1",
        (posting_id,),
    ).fetchone()
    return str(row[0]) if row else None


def move_unsent_date(store: Store, posting_id: int, posting: PlannedPosting, *, actor: str, why: str) -> None:
    """Give a posting QuickBooks has not seen a new transaction date (and memo), with an audit row saying why.

    Raises:
        StoreError: the posting was sent, is in doubt or posted: what QuickBooks may hold is never rewritten.
    """
    with store.atomic():
        current = get_posting(store, posting_id)
        if current.state not in (S.QUEUED, S.BLOCKED):
            raise StoreError(f"posting {posting_id} is {current.state}; its date cannot change")
        store.conn.execute("UPDATE postings SET txn_date = ?, body = ?, updated_at = ? WHERE id = ?",
                           (posting.txn_date.isoformat(), posting_to_json(posting), store.timestamp(), posting_id))
        store.audit.append(AuditEvent.NOTE, actor=actor, report_id=current.report_id, posting_id=posting_id,
                           detail={"txn_date": posting.txn_date.isoformat(), "why": why})
