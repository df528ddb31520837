"""What every transaction kind's plan shares: settings, expense coding, parts, RefNumber digests, dates.

Each kind is one module beside this one (``bill``, ``journal``) and ``planner`` puts them together.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from mlconnector.mapping.rules import MappingKind, Mappings, Resolved
from mlconnector.models import (
    Block,
    Expense,
    Line,
    NonReimbursablePolicy,
    PlannedPosting,
    PostingMode,
    ReimbursableMode,
    Report,
    TxnDateRule,
)

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class PlanSettings:
    """The ``[quickbooks]`` settings that shape a plan (built from the config by the caller)."""

    mode: ReimbursableMode = ReimbursableMode.BILL
    txn_date: TxnDateRule = TxnDateRule.LAST_EXPENSE
    ap_account: str = "Accounts Payable"
    journal_credit_account: str = "Accounts Payable"
    max_lines_per_txn: int = 250
    non_reimbursable: NonReimbursablePolicy = NonReimbursablePolicy.EXCLUDE
    card_account: str = ""
    check_account: str = ""
    check_to_print: bool = False
    negative_reports: str = "vendor_credit"
    card_bill_vendor: str = ""
    journal_lines: str = "expense"
    receipt_links: bool = True
    class_report_field: str = ""
    customer_report_field: str = ""
    card_vendor_fallback: str = "Credit Card Misc."


def digest(text: str, length: int) -> str:
    """A base-32 digest of ``text``, ``length`` characters (stable across runs)."""
    raw = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii")[:length]


def part_suffix(part: int, part_count: int) -> str:
    """``-N`` for part N of several, nothing for a single posting."""
    return f"-{part}" if part_count > 1 else ""


def line_memo(coded: Coded) -> str:
    """An expense line's memo: merchant and comment, then the receipt's address (QuickBooks Desktop has no
    attachments, so a link is how the receipt travels)."""
    memo = expense_memo(coded.expense)
    if coded.receipt_url:
        return f"{memo} {coded.receipt_url}" if memo else coded.receipt_url
    return memo


def expense_memo(expense: Expense) -> str:
    """"merchant — comment" (or whichever of the two is there)."""
    parts = [p.strip() for p in (expense.merchant, expense.comment) if p and p.strip()]
    return " — ".join(parts)


def txn_date_for(report: Report, settings: PlanSettings, posting_day: dt.date) -> dt.date | Block:
    """The transaction date ``quickbooks.txn_date`` asks for, or why the report has none."""
    rule = settings.txn_date
    if rule is TxnDateRule.POSTING_DAY:
        return posting_day
    if rule is TxnDateRule.LAST_EXPENSE:
        return max((e.date for e in report.expenses), default=posting_day)
    value = report.submitted if rule is TxnDateRule.SUBMITTED else report.approved
    if value is None:
        return Block(
            report.report_id, f"the report has no {rule.value} date, which quickbooks.txn_date asks for",
            fix='set quickbooks.txn_date = "last_expense" (or "posting_day") in config.toml', field="txn_date",
        )
    return value


def block_for(report: Report, expense: Expense | None, field: str, resolved: Resolved) -> Block:
    """A mapping that did not resolve, as a block naming the report, the expense and the field."""
    return Block(
        report.report_id, resolved.problem, fix=resolved.fix, field=field,
        expense_id=expense.transaction_id if expense else None,
    )


@dataclass(frozen=True)
class Coded:
    """An expense with its QuickBooks coding."""

    expense: Expense
    account: str
    klass: str | None
    customer: str | None
    item: str | None = None
    receipt_url: str = ""  # linked from the line's memo (receipt_links)


def code_expense(report: Report, expense: Expense, mappings: Mappings, blocks: list[Block], *,
                 receipt_links: bool = True, class_field: str = "", customer_field: str = "") -> Coded | None:
    """The expense's account, class and customer, or None with every problem appended to ``blocks``."""
    found = len(blocks)
    item = mappings.item(expense)
    if item is not None and item.blocks:
        blocks.append(block_for(report, expense, "category (item)", item))
    account = mappings.account(expense)
    if item is None and account.blocks:  # an item line takes its account from the item
        blocks.append(block_for(report, expense, "category", account))
    # Lines without a class (customer) from their tags take the report field's, when one is configured.
    klass = mappings.klass(expense)
    if klass is None and class_field and report.field(class_field):
        klass = mappings.resolve(MappingKind.CLASS, report.field(class_field))
    if klass is not None and klass.blocks:
        blocks.append(block_for(report, expense, f"tag level {mappings.class_tag_level} (class)", klass))
    customer = mappings.customer(expense)
    if customer is None and customer_field and report.field(customer_field):
        customer = mappings.resolve(MappingKind.CUSTOMER, report.field(customer_field))
    if customer is not None and customer.blocks:
        blocks.append(block_for(report, expense, f"tag level {mappings.customer_tag_level} (customer)", customer))
    elif customer is None and expense.billable:
        blocks.append(_billable_block(report, expense, mappings))
    if len(blocks) > found or (item is None and account.target is None):
        return None
    return Coded(
        expense, account.target or "" if item is None else "",
        klass.target if klass is not None else None,
        customer.target if customer is not None else None,
        item.target if item is not None else None,
        expense.receipt_url if receipt_links else "",
    )


def _billable_block(report: Report, expense: Expense, mappings: Mappings) -> Block:
    level = mappings.customer_tag_level
    fix = (
        f"tag it with a customer:job at tag level {level} in Expensify, or mark it not billable"
        if level > 0
        else "set quickbooks.customer_tag_level to the tag level that holds customers, or mark it not billable"
    )
    return Block(
        report.report_id, "the expense is billable but has no customer:job (QuickBooks needs one to bill it)",
        fix=fix, field="billable", expense_id=expense.transaction_id,
    )


def chunks(items: Sequence[Line], size: int) -> list[list[Line]]:
    """Lines cut in order into parts of at most ``size`` (one empty part for no lines)."""
    return [list(items[i : i + size]) for i in range(0, len(items), max(1, size))] or [[]]


def line_sum(lines: Iterable[Line]) -> Decimal:
    """The sum of the lines' amounts."""
    return sum((ln.amount for ln in lines), ZERO)


@dataclass(frozen=True)
class Group:
    """Postings-to-be of one kind for a report: lines cut into parts, and how to close each part."""

    mode: PostingMode
    parts: list[list[Line]]
    vendor: str
    account: str
    to_be_printed: bool = False
    txn_date: dt.date | None = None  # the group's own date (a card expense's), else the report's


class PostingKind(Protocol):
    """One transaction kind's planning rules (a module in ``plan/`` provides one as ``KIND``)."""

    mode: PostingMode

    def account(self, settings: PlanSettings) -> str:
        """The account that closes the transaction for reimbursable expenses (A/P, liability, bank)."""
        ...

    def group(self, report: Report, coded: Sequence[Coded], vendor: str, account: str, settings: PlanSettings,
              blocks: list[Block], *, card: bool = False) -> Group | None:
        """The expenses' lines cut into parts, or None with the reason appended to ``blocks``.

        ``card``: these are company-card expenses (already paid by the company), not owed to the employee.
        """
        ...

    def posting(self, report: Report, group: Group, lines: Sequence[Line], part: int, count: int, label: str,
                date: dt.date) -> PlannedPosting:
        """One part as a posting: RefNumber, memo, closing lines."""
        ...


def nonnegative_parts(lines: Sequence[Line], size: int) -> list[list[Line]] | None:
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


def expense_parts(report: Report, lines: Sequence[Line], settings: PlanSettings, blocks: list[Block], *,
                  what: str, fix: str) -> list[list[Line]] | None:
    """Expense lines in parts of at most ``max_lines_per_txn``, each zero or more; None with the block appended.

    ``what`` names the transaction ("a bill", "a check") in the reason; ``fix`` says what to change.
    """
    total = line_sum(lines)
    if total < 0:
        blocks.append(Block(report.report_id, f"the amount is {total}, and {what} cannot be negative", fix=fix,
                            field="total"))
        return None
    parts = nonnegative_parts(lines, settings.max_lines_per_txn)
    if parts is None:
        blocks.append(Block(
            report.report_id, f"the report cannot be split into parts of {what} that are each zero or more",
            fix=f"raise quickbooks.max_lines_per_txn above {len(lines)}, or set quickbooks.mode = \"journal\"",
            field="total",
        ))
    return parts
