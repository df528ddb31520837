"""Bills: reimbursable expenses owed to the employee's vendor, ``APAccountRef`` from the config.

RefNumber = report ID (≤ 20; parts get ``-N``), one expense line per expense. A total below zero
cannot be a bill: it becomes a vendor credit (``vendor_credit``), or, with negative_reports = "block",
the report is blocked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report
from mlconnector.plan.core import (
    Coded,
    Group,
    PlanSettings,
    digest,
    expense_parts,
    line_memo,
    part_suffix,
)

MAX_BILL_REF = 20


def bill_ref_number(report_id: str, part: int = 1, part_count: int = 1) -> str:
    """The bill RefNumber: the report ID (plus ``-N`` for parts), at most 20 characters.

    An ID too long keeps its start and ends in a 6-character hash of the whole ID, so two long IDs
    with the same start still differ.
    """
    suffix = part_suffix(part, part_count)
    room = MAX_BILL_REF - len(suffix)
    base = report_id if len(report_id) <= room else report_id[: room - 7] + "-" + digest(report_id, 6)
    return base + suffix


def bill_line(coded: Coded) -> Line:
    """The expense line of a bill (also of checks and card charges): account, amount, memo, class, customer."""
    e = coded.expense
    return Line(
        account=coded.account, amount=e.amount, memo=line_memo(coded), customer=coded.customer,
        klass=coded.klass, billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
        item=coded.item,
    )


class BillKind:
    """Planning rules for bills."""

    mode: PostingMode = PostingMode.BILL

    def account(self, settings: PlanSettings) -> str:
        """The A/P account."""
        return settings.ap_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """One expense line each, in parts that are each zero or more."""
        fix = ('enter the card refund in QuickBooks by hand, or set quickbooks.non_reimbursable = "journal"' if card
               else 'set quickbooks.negative_reports = "vendor_credit", or quickbooks.mode = "journal"')
        parts = expense_parts(report, [bill_line(c) for c in coded], settings, blocks, what="a bill", fix=fix)
        return None if parts is None else Group(self.mode, parts, vendor, account)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The bill: the report's label as its memo."""
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number=bill_ref_number(report.report_id, part, count), txn_date=date, vendor=group.vendor,
            account=group.account, lines=tuple(lines), memo=label,
        )


KIND = BillKind()
