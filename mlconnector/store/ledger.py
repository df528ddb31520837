"""Every QuickBooks transaction known to stand for a posting, and the duplicates that follow from it.

A posting normally has one transaction. It can gain a second when QuickBooks finishes a request after
ml-connector gave its session up and posted the same report again (a slow QuickBooks, two Web
Connectors), or when recovery finds two transactions carrying our ExternalGUID. Such a duplicate is
recorded here and shown by ``status`` and ``audit`` with the fix; nothing is ever deleted in QuickBooks
automatically. The posting keeps the TxnID it records (``postings.txn_id``); every other live one is
the duplicate to void.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mlconnector.store import Store
from mlconnector.store.audit import AuditEntry, AuditEvent

# How a transaction was learned.
WRITTEN = "written"
RECOVERED = "recovered"
LATE_ANSWER = "late_answer"


@dataclass(frozen=True)
class KnownTxn:
    """A transaction QuickBooks reported for a posting."""

    posting_id: int
    txn_id: str
    txn_type: str = ""
    ref_number: str | None = None
    edit_sequence: str | None = None


@dataclass(frozen=True)
class Duplicate:
    """A posting QuickBooks holds more than once."""

    report_id: str
    posting_id: int
    part: int
    part_count: int
    ref_number: str
    txn_type: str
    kept_txn_id: str | None
    extra_txn_ids: tuple[str, ...]
    found_at: str
    payee: str = ""
    txn_date: str = ""

    @property
    def fix(self) -> str:
        """What a person does about it (ml-connector never deletes in QuickBooks)."""
        extras = ", ".join(self.extra_txn_ids)
        kept = f"; keep TxnID {self.kept_txn_id}" if self.kept_txn_id else ""
        # A check to be printed was sent without a RefNumber: payee and date find it in the register.
        which = (f"RefNumber {self.ref_number}" if self.ref_number
                 else f"to be printed, payee {self.payee}, dated {self.txn_date}")
        return f"void or delete TxnID {extras} in QuickBooks ({self.txn_type or 'transaction'} {which}){kept}"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``status --json``)."""
        return {
            "report_id": self.report_id, "part": self.part, "part_count": self.part_count,
            "ref_number": self.ref_number, "txn_type": self.txn_type, "kept_txn_id": self.kept_txn_id,
            "duplicate_txn_ids": list(self.extra_txn_ids), "found_at": self.found_at, "fix": self.fix,
        }


def learn(store: Store, txns: Sequence[KnownTxn], *, how: str, ticket_ref: str | None,
          actor: str) -> list[Duplicate]:
    """Record transactions for postings; returns (and audits) the duplicates they reveal.

    Learning a transaction already known changes nothing, so callers may report the same one twice.
    """
    if not txns:
        return []
    ids = sorted({t.posting_id for t in txns})
    known = set(_rows(store, "SELECT posting_id, txn_id FROM posting_txns WHERE posting_id IN ({marks})", ids))
    fresh = {(t.posting_id, t.txn_id): t for t in txns if (t.posting_id, t.txn_id) not in known}
    if not fresh:
        return []
    now = store.timestamp()
    with store.atomic():
        store.conn.executemany(
            "INSERT OR IGNORE INTO posting_txns (posting_id, txn_id, txn_type, ref_number, edit_sequence, how,"
            " ticket_ref, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(t.posting_id, t.txn_id, t.txn_type, t.ref_number, t.edit_sequence, how, ticket_ref, now)
             for t in fresh.values()],
        )
        touched = sorted({pid for pid, _ in fresh})
        found = _duplicates_of(store, touched)
        store.audit.append_many([
            AuditEntry(AuditEvent.DUPLICATE_IN_QUICKBOOKS, actor, d.report_id, d.posting_id, {
                "ref_number": d.ref_number, "kept_txn_id": d.kept_txn_id,
                "duplicate_txn_ids": list(d.extra_txn_ids), "how": how, "fix": d.fix,
            })
            for d in found
        ])
    return found


def mark_gone(store: Store, posting_id: int, txn_id: str) -> None:
    """QuickBooks says this transaction no longer exists (deleted by a person): it is no duplicate."""
    store.conn.execute(
        "UPDATE posting_txns SET gone_at = ? WHERE posting_id = ? AND txn_id = ? AND gone_at IS NULL",
        (store.timestamp(), posting_id, txn_id),
    )


def live_txns(store: Store, posting_id: int) -> list[str]:
    """The TxnIDs QuickBooks is known to hold for a posting, oldest first."""
    return [str(r[0]) for r in store.conn.execute(
        "SELECT txn_id FROM posting_txns WHERE posting_id = ? AND gone_at IS NULL ORDER BY seen_at, txn_id",
        (posting_id,))]


def all_duplicates(store: Store, limit: int | None = None) -> tuple[int, list[Duplicate]]:
    """How many postings QuickBooks holds more than once, and (up to ``limit``) which, newest first."""
    ids = [int(r[0]) for r in store.conn.execute(
        "SELECT posting_id FROM posting_txns WHERE gone_at IS NULL GROUP BY posting_id HAVING COUNT(*) > 1"
        " ORDER BY MAX(seen_at) DESC, posting_id DESC")]
    shown = ids if limit is None else ids[:limit]
    found = {d.posting_id: d for d in _duplicates_of(store, shown)}
    return len(ids), [found[i] for i in shown if i in found]


def duplicates_learned_by(store: Store, ticket_ref: str) -> int:
    """How many postings became duplicates through what the session ``ticket_ref`` learned."""
    row = store.conn.execute(
        "SELECT COUNT(DISTINCT t.posting_id) FROM posting_txns t WHERE t.ticket_ref = ? AND t.gone_at IS NULL"
        " AND (SELECT COUNT(*) FROM posting_txns o WHERE o.posting_id = t.posting_id AND o.gone_at IS NULL) > 1",
        (ticket_ref,),
    ).fetchone()
    return int(row[0] or 0)


def _duplicates_of(store: Store, posting_ids: Sequence[int]) -> list[Duplicate]:
    if not posting_ids:
        return []
    live: dict[int, list[tuple[str, str, str]]] = {}
    for pid, txn_id, txn_type, seen_at in _rows(
        store, "SELECT posting_id, txn_id, txn_type, seen_at FROM posting_txns WHERE gone_at IS NULL"
        " AND posting_id IN ({marks}) ORDER BY seen_at, txn_id", posting_ids,
    ):
        live.setdefault(int(pid), []).append((str(txn_id), str(txn_type or ""), str(seen_at)))
    found = []
    for pid, report_id, part, part_count, ref_number, kept, mode, vendor, txn_date in _rows(
        store, "SELECT id, report_id, part, part_count, ref_number, txn_id, mode, vendor, txn_date FROM postings"
        " WHERE id IN ({marks})",
        [p for p, rows in live.items() if len(rows) > 1],
    ):
        rows = live[int(pid)]
        # The posting's own TxnID stays; while it records none yet (not settled), the first one does.
        keep = kept if kept in {r[0] for r in rows} else rows[0][0]
        extras = tuple(r[0] for r in rows if r[0] != keep)
        found.append(Duplicate(str(report_id), int(pid), int(part), int(part_count), str(ref_number),
                               rows[0][1] or str(mode), keep, extras, max(r[2] for r in rows), str(vendor or ""),
                               str(txn_date or "")))
    return found


def _rows(store: Store, sql: str, ids: Iterable[int]) -> list[tuple[Any, ...]]:
    ids = list(ids)
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        out.extend(store.conn.execute(sql.format(marks=",".join("?" for _ in chunk)), chunk).fetchall())
    return out
