"""Bill payments as a service: reimbursed reports whose bills QuickBooks holds get their payment queued.

Called by ``pull`` (after storing what Expensify says) and by every Web Connector session before it
writes (a bill posted earlier in the same session is paid in it). Never a payment for a bill that is
not posted, never a second one: a report has at most one payment posting, and one whose bills
QuickBooks showed paid by hand gets none (``store.payments``). Whether the bills are still open is
asked of QuickBooks right before the payment is sent (``soap/work/payments.py``).
"""

from __future__ import annotations

import datetime as dt
import logging

from mlconnector.config import Config
from mlconnector.models import PostingMode, PostingState
from mlconnector.plan.bill_payment import PostedBill, bills_to_pay, plan_payment
from mlconnector.store import Store
from mlconnector.store.payments import payment_settled, reports_due_payment, settle_hopeless
from mlconnector.store.postings import add_posting, postings_for_report
from mlconnector.store.reports import load_report, stored_fingerprint

log = logging.getLogger("mlconnector.services.payments")


def queue_payments(store: Store, config: Config, *, today: dt.date, actor: str) -> list[str]:
    """Queue one bill payment per reimbursed report whose bills are all posted; returns their report IDs.

    Nothing when ``quickbooks.bill_payment_account`` is empty.

    Raises:
        StoreError: the state file cannot be written.
    """
    bank = config.quickbooks.bill_payment_account
    if not bank:
        return []
    with store.atomic():
        settle_hopeless(store)
    queued = []
    for report_id in reports_due_payment(store):
        report = load_report(store, report_id)
        bills = [
            PostedBill(r.posting, r.txn_id) for r in postings_for_report(store, report_id)
            if r.mode is PostingMode.BILL and r.state is PostingState.POSTED and r.posting is not None and r.txn_id
        ]
        try:
            payment = plan_payment(report, bills_to_pay(report, bills), bank_account=bank, posting_day=today)
        except ValueError as exc:
            log.warning("no bill payment for report %s: %s", report_id, exc)
            payment = None
        with store.atomic():
            if not reports_due_payment(store, report_id):
                continue  # a pull and a Web Connector session got here at once: the other one queued it
            if payment is not None:
                add_posting(store, payment, state=PostingState.QUEUED,
                            report_fingerprint=stored_fingerprint(store, report_id) or "", actor=actor)
                queued.append(report_id)
            # Queued, or nothing to pay (only company-card bills, owed to the card issuer): not looked for again.
            payment_settled(store, report_id)
    return queued
