"""Journal entries: one balanced entry per posting.

Positive expenses are debit lines, negative ones credit lines (qbXML amounts in a journal entry are
never negative); one balancing line on the closing account names the vendor. RefNumber ≤ 11,
derived from the report ID; the full report ID starts every line memo.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mlconnector.models import Block, Line, PlannedPosting, PostingMode, Report, Side
from mlconnector.plan.core import (
    ZERO,
    Coded,
    Group,
    PlanSettings,
    chunks,
    digest,
    line_memo,
    part_suffix,
)

MAX_JOURNAL_REF = 11


def journal_ref_number(report_id: str, part: int = 1, part_count: int = 1) -> str:
    """The journal entry RefNumber: at most 11 characters, the same every time for a report and part.

    The report ID itself when it fits, else a base-32 hash of it (35 to 55 bits: collisions between
    reports are practically impossible). The full ID is in every line memo.
    """
    suffix = part_suffix(part, part_count)
    room = MAX_JOURNAL_REF - len(suffix)
    base = report_id if len(report_id) <= room else digest(report_id, room)
    return base + suffix


def journal_line(report: Report, coded: Coded) -> Line:
    e = coded.expense
    memo = line_memo(coded)
    return Line(
        account=coded.account, amount=abs(e.amount), memo=f"{report.report_id}: {memo}" if memo else report.report_id,
        side=Side.DEBIT if e.amount > 0 else Side.CREDIT, customer=coded.customer, klass=coded.klass,
        billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
    )


def grouped_lines(report: Report, lines: Sequence[Line]) -> list[Line]:
    """One line per (account, class, customer:job, billable), netted, in first-seen order.

    The memo names the report and every expense the line covers, so the allocation stays traceable; a
    group that nets to zero is dropped (it moves no money).
    """
    groups: dict[tuple[str, str | None, str | None, bool], list[Line]] = {}
    for line in lines:
        groups.setdefault((line.account, line.klass, line.customer, line.billable), []).append(line)
    grouped = []
    for (account, klass, customer, billable), members in groups.items():
        net = sum((ln.amount if ln.side is Side.DEBIT else -ln.amount for ln in members), ZERO)
        if net == 0:
            continue
        covered = ", ".join(ln.expense_id or "" for ln in members)
        grouped.append(Line(
            account=account, amount=abs(net), memo=f"{report.report_id}: {len(members)} expense(s): {covered}",
            side=Side.DEBIT if net > 0 else Side.CREDIT, customer=customer, klass=klass, billable=billable,
            expense_id=covered,
        ))
    return grouped


def _balancing_line(lines: Sequence[Line], account: str, entity: str | None, memo: str) -> Line | None:
    net = sum((ln.amount if ln.side is Side.DEBIT else -ln.amount for ln in lines), ZERO)
    if net == 0:
        return None
    return Line(account=account, amount=abs(net), memo=memo, side=Side.CREDIT if net > 0 else Side.DEBIT, entity=entity)


class JournalKind:
    """Planning rules for journal entries."""

    mode = PostingMode.JOURNAL

    def account(self, settings: PlanSettings) -> str:
        """The liability account credited for what is owed to the employee."""
        return settings.journal_credit_account

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """One line per expense (or per account, class and customer:job with ``journal_lines = "grouped"``), in
        parts that keep a line free for the balancing line."""
        if any(c.item for c in coded):
            categories = sorted({c.expense.category for c in coded if c.item})
            blocks.append(Block(
                report.report_id, f"a journal entry cannot carry items (category {', '.join(categories)} maps to one)",
                fix="post these reports as bills or checks (quickbooks.mode), or remove the item mapping with "
                    f"mlconnector map unset item \"{categories[0]}\"", field="category"))
            return None
        lines = [journal_line(report, c) for c in coded]
        if settings.journal_lines == "grouped":
            lines = grouped_lines(report, lines)
        parts = chunks(lines, max(1, settings.max_lines_per_txn - 1)) if lines else []
        return Group(self.mode, parts, vendor, account)

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """The entry, balanced by a line on the group's account (no header memo: QuickBooks ignores it)."""
        closing = _balancing_line(lines, group.account, group.vendor or None, label)
        return PlannedPosting(
            report_id=report.report_id, part=part, part_count=count, mode=self.mode,
            ref_number=journal_ref_number(report.report_id, part, count), txn_date=date, vendor=group.vendor,
            account=group.account, lines=tuple(lines) + ((closing,) if closing else ()), memo="",
        )


KIND = JournalKind()
