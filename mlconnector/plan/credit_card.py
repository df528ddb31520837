"""Company-card charges and credits (``non_reimbursable = "credit_card"``): one transaction per expense.

A purchase is a ``CreditCardCharge``, a refund a ``CreditCardCredit`` of the refund's amount made
positive. The account is the card's QuickBooks credit card account (``card`` mapping, else
``card_account``); the payee is the merchant's vendor (``merchant`` mapping, else the vendor of the
merchant's name, else ``card_vendor_fallback``). TxnDate is the expense's own date; RefNumber ≤ 11
characters, a digest of the report ID and the expense's transaction ID (so one per expense, the
same every time); the memo names both IDs. Each expense is its own part of the report, so its
idempotency key ``(report_id, part)`` and ExternalGUID are its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlconnector.mapping.rules import Mappings
from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report, Side
from mlconnector.plan.core import (
    Coded,
    Group,
    PlanSettings,
    block_for,
    digest,
    line_memo,
)

MAX_CARD_REF = 11


def card_ref_number(report_id: str, transaction_id: str) -> str:
    """The RefNumber of one card charge or credit: 11 base-32 characters of the report and expense IDs."""
    return digest(f"{report_id}\x1f{transaction_id}", MAX_CARD_REF)


def card_line(coded: Coded) -> Line:
    """The expense line: a purchase as a positive debit, a refund as a positive credit."""
    e = coded.expense
    return Line(
        account=coded.account, amount=abs(e.amount), memo=line_memo(coded), customer=coded.customer,
        klass=coded.klass, billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
        side=Side.DEBIT if e.amount > 0 else Side.CREDIT,
    )


def card_groups(report: Report, coded: Sequence[Coded], mappings: Mappings, settings: PlanSettings,
                blocks: list[Block]) -> list[Group]:
    """One group (of one part, one line) per company-card expense; every unresolved card or payee blocks."""
    groups = []
    for c in coded:
        e = c.expense
        account = mappings.card_account(e.card, settings.card_account)
        if account.blocks:
            blocks.append(block_for(report, e, "card", account))
        payee = mappings.payee(e.merchant, settings.card_vendor_fallback)
        if payee.blocks:
            blocks.append(block_for(report, e, "merchant", payee))
        if account.target is None or payee.target is None:
            continue
        mode = PostingMode.CREDIT_CARD_CHARGE if e.amount > 0 else PostingMode.CREDIT_CARD_CREDIT
        groups.append(Group(mode, [[card_line(c)]], payee.target, account.target, txn_date=e.date))
    return groups


class CardKind:
    """Planning rules for one of the two card transactions (charge or credit)."""

    def __init__(self, mode: PostingMode) -> None:
        self.mode = mode

    def account(self, settings: PlanSettings) -> str:
        """The default credit card account."""
        return settings.card_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """Every expense as its own line (the planner uses :func:`card_groups`, which resolves the payees)."""
        return Group(self.mode, [[card_line(c)] for c in coded], vendor, account)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The charge or credit: the expense's date, a RefNumber and memo naming the report and the expense."""
        expense_id = next((ln.expense_id for ln in lines if ln.expense_id), "")
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number=card_ref_number(report.report_id, expense_id), txn_date=group.txn_date or date,
            vendor=group.vendor, account=group.account, lines=tuple(lines),
            memo=f"Expensify report {report.report_id}, expense {expense_id}",
        )


CHARGE_KIND = CardKind(PostingMode.CREDIT_CARD_CHARGE)
CREDIT_KIND = CardKind(PostingMode.CREDIT_CARD_CREDIT)
