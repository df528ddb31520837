"""Pure posting plan: reports + mappings + settings → bills or journal entries, or blocks with the fix.

Rules (ARCHITECTURE.md, "Posting rules"):

- **Bill mode**: one bill per posting to the submitter's vendor, ``APAccountRef`` from the config,
  RefNumber = report ID (≤ 20; parts get ``-N``), one expense line per reimbursable expense. A
  reimbursable total below zero cannot be a bill: the report is blocked (no VendorCreditAdd yet).
- **Journal mode**: one balanced journal entry per posting. Positive expenses are debit lines,
  negative ones credit lines (qbXML amounts in a journal entry are never negative); one balancing
  line on ``journal_credit_account`` names the vendor. RefNumber ≤ 11, derived from the report ID;
  the full report ID starts every line memo.
- **Company-card expenses** are not owed to the employee: left out with a note, or (policy
  ``journal``) posted in their own journal entry crediting ``card_account``.
- **Parts**: more lines than ``max_lines_per_txn`` → several postings, each a complete transaction
  (each journal part balances on its own); the parts' expense amounts sum to the report total.

Every problem in a report is reported at once (a bookkeeper fixes them in one pass), each as a
:class:`Block` naming the report, the expense, the field and the fix. No clock: the posting day is
passed in.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from mlconnector.mapping.rules import Mappings, Resolved
from mlconnector.models import (
    Block,
    Expense,
    Line,
    NonReimbursablePolicy,
    Plan,
    PlannedPosting,
    PostingMode,
    Report,
    Side,
    TxnDateRule,
)

MAX_BILL_REF = 20
MAX_JOURNAL_REF = 11
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class PlanSettings:
    """The ``[quickbooks]`` settings that shape a plan (built from the config by the caller)."""

    mode: PostingMode = PostingMode.BILL
    txn_date: TxnDateRule = TxnDateRule.LAST_EXPENSE
    ap_account: str = "Accounts Payable"
    journal_credit_account: str = "Accounts Payable"
    max_lines_per_txn: int = 250
    non_reimbursable: NonReimbursablePolicy = NonReimbursablePolicy.EXCLUDE
    card_account: str = ""


# ------------------------------------------------------------------------------ RefNumbers


def _digest(text: str, length: int) -> str:
    raw = hashlib.sha256(text.encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii")[:length]


def _suffix(part: int, part_count: int) -> str:
    return f"-{part}" if part_count > 1 else ""


def bill_ref_number(report_id: str, part: int = 1, part_count: int = 1) -> str:
    """The bill RefNumber: the report ID (plus ``-N`` for parts), at most 20 characters.

    An ID too long keeps its start and ends in a 6-character hash of the whole ID, so two long IDs
    with the same start still differ.
    """
    suffix = _suffix(part, part_count)
    room = MAX_BILL_REF - len(suffix)
    base = report_id if len(report_id) <= room else report_id[: room - 7] + "-" + _digest(report_id, 6)
    return base + suffix


def journal_ref_number(report_id: str, part: int = 1, part_count: int = 1) -> str:
    """The journal entry RefNumber: at most 11 characters, the same every time for a report and part.

    The report ID itself when it fits, else a base-32 hash of it (35 to 55 bits: collisions between
    reports are practically impossible). The full ID is in every line memo.
    """
    suffix = _suffix(part, part_count)
    room = MAX_JOURNAL_REF - len(suffix)
    base = report_id if len(report_id) <= room else _digest(report_id, room)
    return base + suffix


# ------------------------------------------------------------------------------ helpers


def expense_memo(expense: Expense) -> str:
    """"merchant — comment" (or whichever of the two is there)."""
    parts = [p.strip() for p in (expense.merchant, expense.comment) if p and p.strip()]
    return " — ".join(parts)


def _txn_date(report: Report, settings: PlanSettings, posting_day: dt.date) -> dt.date | Block:
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


def _block_for(report: Report, expense: Expense | None, field: str, resolved: Resolved) -> Block:
    return Block(
        report.report_id, resolved.problem, fix=resolved.fix, field=field,
        expense_id=expense.transaction_id if expense else None,
    )


@dataclass(frozen=True)
class _Coded:
    """An expense with its QuickBooks coding."""

    expense: Expense
    account: str
    klass: str | None
    customer: str | None


def _code(report: Report, expense: Expense, mappings: Mappings, blocks: list[Block]) -> _Coded | None:
    found = len(blocks)
    account = mappings.account(expense)
    if account.blocks:
        blocks.append(_block_for(report, expense, "category", account))
    klass = mappings.klass(expense)
    if klass is not None and klass.blocks:
        blocks.append(_block_for(report, expense, f"tag level {mappings.class_tag_level} (class)", klass))
    customer = mappings.customer(expense)
    if customer is not None and customer.blocks:
        blocks.append(_block_for(report, expense, f"tag level {mappings.customer_tag_level} (customer)", customer))
    elif customer is None and expense.billable:
        blocks.append(_billable_block(report, expense, mappings))
    if len(blocks) > found or account.target is None:
        return None
    return _Coded(
        expense, account.target,
        klass.target if klass is not None else None,
        customer.target if customer is not None else None,
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


def _chunks(items: Sequence[Line], size: int) -> list[list[Line]]:
    return [list(items[i : i + size]) for i in range(0, len(items), max(1, size))] or [[]]


def _bill_parts(lines: Sequence[Line], size: int) -> list[list[Line]] | None:
    """Lines cut into parts of at most ``size`` with no part below zero, or None when impossible.

    In order first (readable); when that leaves a negative part, the lines are dealt round-robin
    from the largest down so refunds sit beside purchases, each part kept in the report's order.
    """
    parts = _chunks(lines, size)
    if all(_sum(p) >= 0 for p in parts):
        return parts
    count = len(parts)
    order = {id(ln): n for n, ln in enumerate(lines)}
    ranked = sorted(lines, key=lambda ln: (-ln.amount, order[id(ln)]))
    dealt: list[list[Line]] = [ranked[i::count] for i in range(count)]
    parts = [sorted(p, key=lambda ln: order[id(ln)]) for p in dealt]
    if all(len(p) <= size and _sum(p) >= 0 for p in parts):
        return parts
    return None


def _sum(lines: Iterable[Line]) -> Decimal:
    return sum((ln.amount for ln in lines), ZERO)


# ------------------------------------------------------------------------------ lines


def _bill_line(coded: _Coded) -> Line:
    e = coded.expense
    return Line(
        account=coded.account, amount=e.amount, memo=expense_memo(e), customer=coded.customer,
        klass=coded.klass, billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
    )


def _journal_line(report: Report, coded: _Coded) -> Line:
    e = coded.expense
    memo = expense_memo(e)
    return Line(
        account=coded.account, amount=abs(e.amount), memo=f"{report.report_id}: {memo}" if memo else report.report_id,
        side=Side.DEBIT if e.amount > 0 else Side.CREDIT, customer=coded.customer, klass=coded.klass,
        billable=e.billable and coded.customer is not None, expense_id=e.transaction_id,
    )


def _balancing_line(lines: Sequence[Line], account: str, entity: str | None, memo: str) -> Line | None:
    net = sum((ln.amount if ln.side is Side.DEBIT else -ln.amount for ln in lines), ZERO)
    if net == 0:
        return None
    return Line(account=account, amount=abs(net), memo=memo, side=Side.CREDIT if net > 0 else Side.DEBIT, entity=entity)


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class _Group:
    """Postings-to-be of one kind for a report: lines cut into parts, and how to close each part."""

    mode: PostingMode
    parts: list[list[Line]]
    vendor: str
    account: str


def plan_report(report: Report, mappings: Mappings, settings: PlanSettings, *, posting_day: dt.date) -> Plan:
    """The postings for one report, or every reason it cannot be posted (and notes for the audit)."""
    blocks: list[Block] = []
    notes: list[Block] = []
    expenses = _kept_expenses(report, settings, notes)
    own = [e for e in expenses if e.reimbursable]
    card = [e for e in expenses if not e.reimbursable]
    total = sum((e.amount for e in report.expenses), ZERO)
    if total != report.total:
        blocks.append(Block(
            report.report_id, f"the report total {report.total} does not equal the sum of its expenses {total}",
            fix="pull the report again; if it persists, check it in Expensify", field="total",
        ))
    date = _txn_date(report, settings, posting_day)
    if isinstance(date, Block):
        blocks.append(date)
    vendor = mappings.vendor(report) if own else None
    if vendor is not None and vendor.blocks:
        blocks.append(_block_for(report, None, "submitter_email", vendor))
    coded = [_code(report, e, mappings, blocks) for e in (*own, *card)]
    if blocks or isinstance(date, Block):
        return Plan(blocked=tuple(blocks), notes=tuple(notes))
    own_coded = [c for c in coded[: len(own)] if c is not None]
    card_coded = [c for c in coded[len(own) :] if c is not None]
    groups = _groups(report, own_coded, card_coded, (vendor.target or "") if vendor else "", settings, blocks)
    if blocks:
        return Plan(blocked=tuple(blocks), notes=tuple(notes))
    if not groups:
        notes.append(Block(report.report_id, "nothing to post: no expense is owed to the employee or set to post"))
    return Plan(postings=tuple(_postings(report, groups, date)), notes=tuple(notes))


def _kept_expenses(report: Report, settings: PlanSettings, notes: list[Block]) -> list[Expense]:
    kept = []
    for e in report.expenses:
        if e.amount == 0:
            notes.append(Block(report.report_id, "a 0.00 expense is left out", field="amount",
                               expense_id=e.transaction_id))
        elif not e.reimbursable and settings.non_reimbursable is NonReimbursablePolicy.EXCLUDE:
            notes.append(Block(
                report.report_id, f"company-card expense of {e.amount} left out: it is not owed to the employee",
                fix='set quickbooks.non_reimbursable = "journal" and card_account to post card expenses',
                field="reimbursable", expense_id=e.transaction_id,
            ))
        else:
            kept.append(e)
    return kept


def _groups(
    report: Report, own: list[_Coded], card: list[_Coded], vendor: str, settings: PlanSettings, blocks: list[Block]
) -> list[_Group]:
    groups = []
    per_journal = max(1, settings.max_lines_per_txn - 1)  # one line is kept for the balancing line
    if own and settings.mode is PostingMode.BILL:
        lines = [_bill_line(c) for c in own]
        if _sum(lines) < 0:
            blocks.append(Block(
                report.report_id, f"the amount owed to the employee is {_sum(lines)}, and a bill cannot be negative",
                fix="enter it in QuickBooks as a vendor credit by hand, or set quickbooks.mode = \"journal\"",
                field="total",
            ))
            return []
        parts = _bill_parts(lines, settings.max_lines_per_txn)
        if parts is None:
            blocks.append(Block(
                report.report_id, "the report cannot be split into bills that are each zero or more",
                fix=f"raise quickbooks.max_lines_per_txn above {len(lines)}, or set quickbooks.mode = \"journal\"",
                field="total",
            ))
            return []
        groups.append(_Group(PostingMode.BILL, parts, vendor, settings.ap_account))
    elif own:
        lines = [_journal_line(report, c) for c in own]
        groups.append(_Group(PostingMode.JOURNAL, _chunks(lines, per_journal), vendor, settings.journal_credit_account))
    if card:
        lines = [_journal_line(report, c) for c in card]
        groups.append(_Group(PostingMode.JOURNAL, _chunks(lines, per_journal), "", settings.card_account))
    return groups


def _postings(report: Report, groups: list[_Group], date: dt.date) -> list[PlannedPosting]:
    count = sum(len(g.parts) for g in groups)
    postings = []
    part = 0
    for group in groups:
        for lines in group.parts:
            part += 1
            label = f"Expensify report {report.report_id}: {report.name}".rstrip(": ")
            if count > 1:
                label += f" (part {part} of {count})"
            if group.mode is PostingMode.BILL:
                ref, body = bill_ref_number(report.report_id, part, count), tuple(lines)
            else:
                ref = journal_ref_number(report.report_id, part, count)
                closing = _balancing_line(lines, group.account, group.vendor or None, label)
                body = tuple(lines) + ((closing,) if closing else ())
            postings.append(PlannedPosting(
                report_id=report.report_id, part=part, part_count=count, mode=group.mode, ref_number=ref,
                txn_date=date, vendor=group.vendor, account=group.account, lines=body,
                memo=label if group.mode is PostingMode.BILL else "",
            ))
    return postings


def plan_reports(
    reports: Iterable[Report], mappings: Mappings, settings: PlanSettings, *, posting_day: dt.date
) -> Plan:
    """One plan for many reports: their postings, blocks and notes, in report order."""
    postings: list[PlannedPosting] = []
    blocked: list[Block] = []
    notes: list[Block] = []
    for report in reports:
        plan = plan_report(report, mappings, settings, posting_day=posting_day)
        postings.extend(plan.postings)
        blocked.extend(plan.blocked)
        notes.extend(plan.notes)
    return Plan(tuple(postings), tuple(blocked), tuple(notes))


__all__ = [
    "PlanSettings", "bill_ref_number", "expense_memo", "journal_ref_number", "plan_report", "plan_reports",
]
