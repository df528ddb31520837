"""Checks: reimbursable expenses paid to the employee's vendor from ``check_account`` (a bank account).

One ``CheckAdd`` per posting (parts as for bills), RefNumber ≤ 11 characters derived from the report ID
(the report ID when it fits), or none with ``check_to_print`` (QuickBooks numbers it when it prints).
A check cannot be negative: such a report is blocked. Also used for company-card expenses paid by
debit card (``non_reimbursable = "debit_card"``), from ``card_account``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report
from mlconnector.plan.bill import bill_line
from mlconnector.plan.core import (
    Coded,
    Group,
    PlanSettings,
    digest,
    expense_parts,
    part_suffix,
)

MAX_CHECK_REF = 11


def check_ref_number(report_id: str, part: int = 1, part_count: int = 1) -> str:
    """The check RefNumber: the report ID when it fits in 11 characters (with ``-N`` for parts), else a digest."""
    suffix = part_suffix(part, part_count)
    room = MAX_CHECK_REF - len(suffix)
    return (report_id if len(report_id) <= room else digest(report_id, room)) + suffix


class CheckKind:
    """Planning rules for checks."""

    mode = PostingMode.CHECK

    def account(self, settings: PlanSettings) -> str:
        """The bank account checks are written from."""
        return settings.check_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """One expense line each, in parts that are each zero or more."""
        fix = ('enter the card refund in QuickBooks by hand, or set quickbooks.non_reimbursable = "journal"' if card
               else 'enter the repayment in QuickBooks by hand, or set quickbooks.mode = "bill" (a vendor credit)')
        parts = expense_parts(report, [bill_line(c) for c in coded], settings, blocks, what="a check", fix=fix)
        # Only checks to the employee are printed: a debit-card payment is already made and keeps its reference.
        printed = settings.check_to_print and not card
        return None if parts is None else Group(self.mode, parts, vendor, account, printed)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The check: the report's label as its memo; to be printed, no RefNumber."""
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number="" if group.to_be_printed else check_ref_number(report.report_id, part, count),
            txn_date=date, vendor=group.vendor, account=group.account, lines=tuple(lines), memo=label,
            to_be_printed=group.to_be_printed,
        )


KIND = CheckKind()
