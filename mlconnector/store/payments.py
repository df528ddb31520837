"""Reimbursements and bill payments in the state file: which reports to read again, which to pay, and
bills QuickBooks showed already paid by hand."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from mlconnector.models import PostingMode, PostingState
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

_REIMBURSED = "(r.reimbursed IS NOT NULL OR r.status = 'Reimbursed' COLLATE NOCASE)"


def reports_to_watch(store: Store, posted_since: str) -> list[str]:
    """Reports with a posting QuickBooks accepted at or after ``posted_since`` (a store timestamp) that
    Expensify has not shown reimbursed yet, by report ID: what a pull reads again."""
    return [str(r[0]) for r in store.conn.execute(
        f"SELECT r.report_id FROM reports r WHERE NOT {_REIMBURSED} AND EXISTS (SELECT 1 FROM postings p"
        " WHERE p.report_id = r.report_id AND +p.state = ? AND p.updated_at >= ?) ORDER BY r.report_id",
        (PostingState.POSTED.value, posted_since))]


def reimbursed_among(store: Store, report_ids: Sequence[str]) -> list[str]:
    """Those of ``report_ids`` Expensify has shown reimbursed, in the order given."""
    found: set[str] = set()
    for start in range(0, len(report_ids), 500):
        chunk = list(report_ids[start:start + 500])
        marks = ",".join("?" for _ in chunk)
        found |= {str(r[0]) for r in store.conn.execute(
            f"SELECT r.report_id FROM reports r WHERE r.report_id IN ({marks}) AND {_REIMBURSED}", chunk)}
    return [rid for rid in report_ids if rid in found]


def reports_due_payment(store: Store, report_id: str | None = None) -> list[str]:
    """Reimbursed reports (not changed after posting) whose bills are all posted and that have no payment
    yet, nor bills found paid by hand (``report_id``: only that one, if it is)."""
    bill, payment = PostingMode.BILL.value, PostingMode.BILL_PAYMENT.value
    only = " AND r.report_id = ?" if report_id is not None else ""
    return [str(r[0]) for r in store.conn.execute(
        f"SELECT r.report_id FROM reports r WHERE r.payment_pending = 1 AND {_REIMBURSED}"
        f" AND r.changed_after_posting = 0{only}"
        # "+p.state": look the report's few postings up by report ID, not every posted posting by state.
        " AND EXISTS (SELECT 1 FROM postings p WHERE p.report_id = r.report_id AND p.mode = ? AND +p.state = ?)"
        " AND NOT EXISTS (SELECT 1 FROM postings p WHERE p.report_id = r.report_id"
        "  AND ((p.mode = ? AND +p.state != ?) OR p.mode = ?))"
        " AND NOT EXISTS (SELECT 1 FROM bills_paid_by_hand h WHERE h.report_id = r.report_id)"
        " ORDER BY r.report_id",
        (*((report_id,) if report_id is not None else ()), bill, PostingState.POSTED.value, bill,
         PostingState.POSTED.value, payment))]


def reset_unsent_payment(store: Store, report_id: str) -> int:
    """The report's bills are being checked or posted again (replay --force, re-planning): a payment not sent
    yet names their old TxnIDs, so it is dropped, and planned again once every bill is posted. Returns how
    many were dropped."""
    dropped = store.conn.execute(
        "DELETE FROM postings WHERE report_id = ? AND mode = ? AND state IN (?, ?)",
        (report_id, PostingMode.BILL_PAYMENT.value, PostingState.QUEUED.value, PostingState.BLOCKED.value)).rowcount
    store.conn.execute("UPDATE reports SET payment_pending = 1 WHERE report_id = ?", (report_id,))
    return int(dropped)


def settle_hopeless(store: Store) -> int:
    """Reports flagged as awaiting a payment that can never get one: changed after posting, planned to
    nothing, or posted as anything but bills. Keeps the flag's index as small as the work really waiting."""
    return int(store.conn.execute(
        "UPDATE reports SET payment_pending = 0 WHERE payment_pending = 1 AND (changed_after_posting = 1"
        " OR EXISTS (SELECT 1 FROM plan_skips s WHERE s.report_id = reports.report_id)"
        " OR (EXISTS (SELECT 1 FROM postings p WHERE p.report_id = reports.report_id)"
        "  AND NOT EXISTS (SELECT 1 FROM postings p WHERE p.report_id = reports.report_id AND p.mode = ?)))",
        (PostingMode.BILL.value,)).rowcount)


def payment_settled(store: Store, report_id: str) -> None:
    """The report's payment is queued, or found paid, or not needed: it is no longer looked for."""
    store.conn.execute("UPDATE reports SET payment_pending = 0 WHERE report_id = ?", (report_id,))


def payments_to_check(store: Store, ticket: str) -> list[int]:
    """Payments queued, or blocked by an earlier check, that no check of this session has named yet, by id."""
    # By state first: the index on it keeps this cheap however many postings the books hold.
    return [int(r[0]) for r in store.conn.execute(
        "SELECT p.id FROM postings p WHERE p.state IN (?, ?) AND p.mode = ? AND p.body IS NOT NULL"
        " AND (p.state = ? OR p.reason LIKE 'QuickBooks check:%')"
        " AND NOT EXISTS (SELECT 1 FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
        "  WHERE i.posting_id = p.id AND m.ticket = ? AND m.kind = 'payment_check') ORDER BY p.id",
        (PostingState.QUEUED.value, PostingState.BLOCKED.value, PostingMode.BILL_PAYMENT.value,
         PostingState.QUEUED.value, ticket))]


def record_paid_by_hand(store: Store, report_id: str, posting_id: int, bills: Sequence[Mapping[str, Any]], *,
                        actor: str) -> None:
    """QuickBooks shows every bill of the report paid already: remember it, drop the unsent payment, audit it.

    The payment was never sent (QuickBooks was asked before it could be), so dropping it loses nothing.
    """
    with store.atomic():
        store.conn.execute(
            "INSERT OR REPLACE INTO bills_paid_by_hand (report_id, bills, found_at) VALUES (?, ?, ?)",
            (report_id, json.dumps(list(bills), sort_keys=True), store.timestamp()))
        payment_settled(store, report_id)
        store.conn.execute("DELETE FROM postings WHERE id = ? AND state IN (?, ?)",
                           (posting_id, PostingState.QUEUED.value, PostingState.BLOCKED.value))
        store.audit.append(AuditEvent.PAID_IN_QUICKBOOKS, actor=actor, report_id=report_id, posting_id=posting_id,
                           detail={"bills": list(bills), "action": "no payment posted: QuickBooks shows the bills "
                                                               "paid already (entered by hand)"})


def paid_by_hand_count(store: Store) -> int:
    """Reports whose bills QuickBooks showed paid by hand."""
    return int(store.conn.execute("SELECT COUNT(*) FROM bills_paid_by_hand").fetchone()[0])


def payment_counts(store: Store) -> dict[str, int]:
    """Bill payments per state (every state present, zeros included), plus ``paid_by_hand``."""
    counts = {state.value: 0 for state in PostingState}
    for state, n in store.conn.execute(
            "SELECT state, COUNT(*) FROM postings WHERE mode = ? GROUP BY state", (PostingMode.BILL_PAYMENT.value,)):
        counts[str(state)] = int(n)
    counts["paid_by_hand"] = paid_by_hand_count(store)
    return counts
