"""Vendor credits: a bill-mode report whose reimbursable total is negative (the employee owes it back).

One ``VendorCreditAdd`` per posting to the submitter's vendor and the A/P account, RefNumber as for
bills. Each line is the expense with its sign flipped: a refund becomes a positive credit line, a
purchase on a refund report a negative one; each part totals zero or more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from mlconnector.models import Block, PostingMode, Report
from mlconnector.plan.bill import BillKind, bill_line
from mlconnector.plan.core import Coded, Group, PlanSettings, expense_parts


class VendorCreditKind(BillKind):
    """Planning rules for vendor credits: a bill's, with the lines' signs flipped."""

    mode = PostingMode.VENDOR_CREDIT

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """The expense lines with their signs flipped, in parts that are each zero or more."""
        lines = [dataclasses.replace(line, amount=-line.amount) for line in (bill_line(c) for c in coded)]
        parts = expense_parts(report, lines, settings, blocks, what="a vendor credit",
                              fix='set quickbooks.mode = "journal"')
        return None if parts is None else Group(self.mode, parts, vendor, account)


KIND = VendorCreditKind()
