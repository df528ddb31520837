"""Bill payments: a report posted as bill(s) and reimbursed in Expensify is paid in QuickBooks.

One ``BillPaymentCheckAdd`` per report: the bills' vendor, the A/P account the bills were posted to,
``bill_payment_account`` as the bank, the reimbursement date (the posting day when Expensify gives
none), a RefNumber of at most 11 characters from the report ID, and one applied line per bill part
(its TxnID, that part's total). Only bills owed to the employee are paid: a company-card bill owed to
the card issuer (``non_reimbursable = "bill"``) is not what Expensify reimbursed.

Not a planning kind of :data:`mlconnector.plan.planner.KINDS` (it is made from posted bills, not from
expenses); it is written and recovered like every other posting.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from mlconnector.models import Line, PlannedPosting, PostingMode, Report
from mlconnector.plan.core import digest

MAX_PAYMENT_REF = 11
# The payment's place among the report's postings: the idempotency key (report ID, part) needs one that
# no bill part can have (parts count from 1).
PAYMENT_PART = 0


def payment_ref_number(report_id: str) -> str:
    """The payment's RefNumber (its check number): the report ID when it fits 11 characters, else a hash of it."""
    return report_id if len(report_id) <= MAX_PAYMENT_REF else digest(report_id, MAX_PAYMENT_REF)


@dataclass(frozen=True)
class PostedBill:
    """A bill part QuickBooks holds: what was posted and the TxnID it got."""

    posting: PlannedPosting
    txn_id: str


def bills_to_pay(report: Report, bills: Sequence[PostedBill]) -> list[PostedBill]:
    """The bill parts Expensify's reimbursement paid: those carrying only reimbursable expenses, above zero."""
    reimbursable = {e.transaction_id for e in report.expenses if e.reimbursable}
    return [
        b for b in bills
        if b.posting.mode is PostingMode.BILL and b.posting.total > 0
        and all(ln.expense_id in reimbursable for ln in b.posting.lines if ln.expense_id is not None)
    ]


def plan_payment(report: Report, bills: Sequence[PostedBill], *, bank_account: str,
                 posting_day: dt.date) -> PlannedPosting | None:
    """The payment of ``bills`` (already filtered by :func:`bills_to_pay`), or None when there is nothing to pay.

    Raises:
        ValueError: the bills name different vendors or A/P accounts (one payment has one payee).
    """
    if not bills:
        return None
    vendors = {b.posting.vendor for b in bills}
    ap_accounts = {b.posting.account for b in bills}
    if len(vendors) != 1 or len(ap_accounts) != 1:
        raise ValueError(f"report {report.report_id}: its bills name several vendors or A/P accounts")
    lines = tuple(
        Line(account=b.posting.account, amount=b.posting.total, memo=f"bill {b.posting.ref_number}", txn_id=b.txn_id)
        for b in sorted(bills, key=lambda b: b.posting.part)
    )
    memo = f"Expensify report {report.report_id} reimbursed"
    if report.ach_reimbursed:
        memo += " (ACH)"
    return PlannedPosting(
        report_id=report.report_id, part=PAYMENT_PART, part_count=1, mode=PostingMode.BILL_PAYMENT,
        ref_number=payment_ref_number(report.report_id), txn_date=report.reimbursed or posting_day,
        vendor=vendors.pop(), account=bank_account, lines=lines, memo=memo,
    )
