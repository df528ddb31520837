"""Vendor credits: a bill-mode report whose reimbursable total is negative (the employee owes it back).

One ``VendorCreditAdd`` per posting to the submitter's vendor and the A/P account, RefNumber as for
bills. Each line is the expense with its sign flipped: a refund becomes a positive credit line, a
purchase on a refund report a negative one; each part totals zero or more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report
from mlconnector.plan.bill import bill_line, bill_ref_number
from mlconnector.plan.core import Coded, Group, PlanSettings, expense_parts


class VendorCreditKind:
    """Planning rules for vendor credits."""

    mode = PostingMode.VENDOR_CREDIT

    def account(self, settings: PlanSettings) -> str:
        """The A/P account, as for bills."""
        return settings.ap_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """The expense lines with their signs flipped, in parts that are each zero or more."""
        lines = [dataclasses.replace(line, amount=-line.amount) for line in (bill_line(c) for c in coded)]
        parts = expense_parts(report, lines, settings, blocks, what="a vendor credit",
                              fix='set quickbooks.mode = "journal"')
        return None if parts is None else Group(self.mode, parts, vendor, account)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The vendor credit: the report's label as its memo."""
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number=bill_ref_number(report.report_id, part, count), txn_date=date, vendor=group.vendor,
            account=group.account, lines=tuple(lines), memo=label,
        )


KIND = VendorCreditKind()
