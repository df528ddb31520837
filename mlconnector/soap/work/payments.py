"""Stage 3b: bill payments are checked against QuickBooks right before they are written.

Reimbursed reports whose bills QuickBooks holds get their payment queued first (``services.payments``),
so a bill posted earlier in the session is paid in it. Then, once per session for each payment, one
message asks QuickBooks for every bill it pays (by TxnID: open amount, paid) and for the names it uses
(payee, A/P and bank accounts). What the answer decides, per payment:

- every bill open for the whole part → the names are checked as for any posting; verified, it is written;
- every bill paid already (someone entered the payment by hand) → recorded, nothing is posted;
- a bill deleted, partly paid, or that QuickBooks did not describe → blocked, naming it and the fix;
  a blocked payment is checked again at the next update (its reason starts with "QuickBooks check:").

Never more than a bill's open amount, and never a payment QuickBooks was not asked about in this session.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mlconnector.qbxml.build import build_message
from mlconnector.qbxml.parse import MessageResponse, TxnRecord
from mlconnector.qbxml.status import Action
from mlconnector.qbxml.txns.bill_payment import bills_query
from mlconnector.soap.work.core import ACTOR, S, log
from mlconnector.soap.work.lists import ListsAndVerify
from mlconnector.store.messages import Kind, Message
from mlconnector.store.payments import payments_to_check, record_paid_by_hand, reports_due_payment
from mlconnector.store.postings import PostingRecord, transition

BILL_REQUEST = "b-"  # requestID prefix of a bill's query; the TxnID follows


class Payments(ListsAndVerify):
    """Stage 3b: bill payments checked against QuickBooks (bills still open, names there) before they are written."""

    def _payments_due(self) -> bool:
        """A reimbursed report's bills are posted and its payment is not queued yet."""
        return bool(self.config.quickbooks.bill_payment_account) and bool(reports_due_payment(self.store))

    def _payments_left(self, ticket: str) -> int:
        return len(payments_to_check(self.store, ticket)) + (1 if self._payments_due() else 0)

    def _payment_check(self, ticket: str, version: str) -> str | None:
        if self._payments_due():
            from mlconnector.services.payments import queue_payments

            queue_payments(self.store, self.config, today=self.now().date(), actor=ACTOR)
        due = self._existing(payments_to_check(self.store, ticket))
        if not due:
            return None
        txn_ids = sorted({ln.txn_id for p in due if p.posting for ln in p.posting.lines if ln.txn_id})
        # One query per bill: an answer then speaks for that bill alone (a missing one cannot hide the others).
        requests = [bills_query([txn_id], f"{BILL_REQUEST}{txn_id}", version) for txn_id in txn_ids]
        requests += self._name_queries(due, ticket, version)
        xml = build_message(requests, version=version, on_error="continueOnError")
        return self._store_message(ticket, Kind.PAYMENT_CHECK, xml, [p.id for p in due], [])

    def _on_payment_check(self, message: Message, parsed: MessageResponse) -> None:
        bills: dict[str, TxnRecord | None] = {}  # TxnID -> the bill, or None: QuickBooks has no such bill
        for answer in parsed.responses:
            if not (answer.request_id or "").startswith(BILL_REQUEST):
                continue
            txn_id = (answer.request_id or "")[len(BILL_REQUEST):]
            if answer.action is Action.NO_MATCH or answer.status_code == 3120:  # 3120: object not found
                bills[txn_id] = None
            elif answer.action.processed:
                bills[txn_id] = next((t for t in answer.txns if t.txn_id == txn_id), None)
            else:
                log.warning("QuickBooks did not describe bill %s (%s %s); its payment waits", txn_id,
                            answer.status_code, answer.status_message)
        open_for_payment = []
        for record in self._existing(message.posting_ids):
            if record.state not in (S.QUEUED, S.BLOCKED) or record.posting is None:
                continue
            if self._judge_bills(record, bills):
                open_for_payment.append(record)
        self._check_postings(message, open_for_payment, self._answered_lookup(parsed))

    def _judge_bills(self, record: PostingRecord, bills: dict[str, TxnRecord | None]) -> bool:
        """True when every bill the payment pays is open for the whole amount; else it is recorded or blocked."""
        assert record.posting is not None
        seen: list[dict[str, Any]] = []
        problems: list[str] = []
        paid = 0
        for line in record.posting.lines:
            name = line.memo or f"bill {line.txn_id}"
            txn_id = line.txn_id or ""
            if txn_id not in bills:
                problems.append(f"QuickBooks did not say whether {name} (TxnID {txn_id}) is still open")
                continue
            bill = bills[txn_id]
            if bill is None:
                problems.append(f"{name} (TxnID {txn_id}) is no longer in QuickBooks (deleted?)")
                continue
            open_amount = _open_amount(bill)
            seen.append({"txn_id": txn_id, "ref_number": bill.ref_number, "total": str(line.amount),
                         "open_amount": None if open_amount is None else str(open_amount)})
            if open_amount is None:
                problems.append(f"QuickBooks did not give the open amount of {name} (TxnID {txn_id})")
            elif open_amount == 0:
                paid += 1
            elif open_amount != line.amount:
                problems.append(f"{name} (TxnID {txn_id}) has {open_amount} open of {line.amount}: part of it "
                                "was paid in QuickBooks")
        if not problems and paid == len(record.posting.lines):
            record_paid_by_hand(self.store, record.report_id, record.id, seen, actor=ACTOR)
            log.info("report %s: its bills are paid in QuickBooks already; no payment posted", record.report_id)
            return False
        if paid and not problems:
            problems.append("some of its bills are paid in QuickBooks already and some are not")
        if problems:
            reason = (f"QuickBooks check: the bill payment waits: {'; '.join(problems)} — pay the rest by hand in "
                      "QuickBooks (ml-connector then records the bills as paid); for a deleted bill run "
                      f"mlconnector replay --force {record.report_id} (QuickBooks is asked for the bill first, it is "
                      "posted again only if absent, and the payment follows)")
            if record.state is S.QUEUED or record.reason != reason:
                transition(self.store, record.id, S.BLOCKED, actor=ACTOR, reason=reason, detail={"bills": seen})
            return False
        return True


def _open_amount(bill: TxnRecord) -> Decimal | None:
    if bill.open_amount is not None:
        return bill.open_amount
    return Decimal("0.00") if bill.is_paid else None
