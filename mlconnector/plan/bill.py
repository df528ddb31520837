"""Bills: reimbursable expenses owed to the employee's vendor, ``APAccountRef`` from the config.

RefNumber = report ID (≤ 20; parts get ``-N``), one expense line per expense. A total below zero
cannot be a bill: the report is blocked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report
from mlconnector.plan.core import (
    Coded,
    Group,
    PlanSettings,
    chunks,
    digest,
    expense_memo,
    line_sum,
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
    e = coded.expense
    return Line(
        account=coded.account, amount=e.amount, memo=expense_memo(e), customer=coded.customer,
        klass=coded.klass, billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
    )


def _bill_parts(lines: Sequence[Line], size: int) -> list[list[Line]] | None:
    """Lines cut into parts of at most ``size`` with no part below zero, or None when impossible.

    In order first (readable); when that leaves a negative part, the lines are dealt round-robin
    from the largest down so refunds sit beside purchases, each part kept in the report's order.
    """
    parts = chunks(lines, size)
    if all(line_sum(p) >= 0 for p in parts):
        return parts
    count = len(parts)
    order = {id(ln): n for n, ln in enumerate(lines)}
    ranked = sorted(lines, key=lambda ln: (-ln.amount, order[id(ln)]))
    dealt: list[list[Line]] = [ranked[i::count] for i in range(count)]
    parts = [sorted(p, key=lambda ln: order[id(ln)]) for p in dealt]
    if all(len(p) <= size and line_sum(p) >= 0 for p in parts):
        return parts
    return None


class BillKind:
    """Planning rules for bills."""

    mode = PostingMode.BILL

    def account(self, settings: PlanSettings) -> str:
        """The A/P account."""
        return settings.ap_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block]) -> Group | None:
        """One expense line each, in parts that are each zero or more."""
        lines = [bill_line(c) for c in coded]
        if line_sum(lines) < 0:
            blocks.append(Block(
                report.report_id, f"the amount owed to the employee is {line_sum(lines)}, and a bill cannot be negative",
                fix="enter it in QuickBooks as a vendor credit by hand, or set quickbooks.mode = \"journal\"",
                field="total",
            ))
            return None
        parts = _bill_parts(lines, settings.max_lines_per_txn)
        if parts is None:
            blocks.append(Block(
                report.report_id, "the report cannot be split into bills that are each zero or more",
                fix=f"raise quickbooks.max_lines_per_txn above {len(lines)}, or set quickbooks.mode = \"journal\"",
                field="total",
            ))
            return None
        return Group(self.mode, parts, vendor, account)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The bill: the report's label as its memo."""
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number=bill_ref_number(report.report_id, part, count), txn_date=date, vendor=group.vendor,
            account=group.account, lines=tuple(lines), memo=label,
        )


KIND = BillKind()
