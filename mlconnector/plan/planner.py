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
- **Company-card charges** (policy ``credit_card``): one credit card charge per card purchase, one
  credit per refund, each its own part (``plan/credit_card.py``).
- **Parts**: more lines than ``max_lines_per_txn`` → several postings, each a complete transaction
  (each journal part balances on its own); the parts' expense amounts sum to the report total.

Every problem in a report is reported at once (a bookkeeper fixes them in one pass), each as a
:class:`Block` naming the report, the expense, the field and the fix. No clock: the posting day is
passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from mlconnector.mapping.rules import Mappings
from mlconnector.models import (
    Block,
    Expense,
    NonReimbursablePolicy,
    Plan,
    PlannedPosting,
    PostingMode,
    Report,
)
from mlconnector.plan import bill, check, credit_card, journal, vendor_credit
from mlconnector.plan.core import (
    ZERO,
    Coded,
    Group,
    PlanSettings,
    PostingKind,
    block_for,
    code_expense,
    txn_date_for,
)

# The transaction kinds, by the posting mode that selects them (quickbooks.mode and non_reimbursable).
KINDS: dict[PostingMode, PostingKind] = {
    kind.mode: kind for kind in (
        bill.KIND, journal.KIND, check.KIND, vendor_credit.KIND, credit_card.CHARGE_KIND, credit_card.CREDIT_KIND,
    )
}


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
    date = txn_date_for(report, settings, posting_day)
    if isinstance(date, Block):
        blocks.append(date)
    needs_vendor = own or (card and settings.non_reimbursable is NonReimbursablePolicy.DEBIT_CARD)
    vendor = mappings.vendor(report) if needs_vendor else None
    if vendor is not None and vendor.blocks:
        blocks.append(block_for(report, None, "submitter_email", vendor))
    coded = [code_expense(report, e, mappings, blocks, receipt_links=settings.receipt_links,
                          class_field=settings.class_report_field, customer_field=settings.customer_report_field)
             for e in (*own, *card)]
    if blocks or isinstance(date, Block):
        return Plan(blocked=tuple(blocks), notes=tuple(notes))
    own_coded = [c for c in coded[: len(own)] if c is not None]
    card_coded = [c for c in coded[len(own) :] if c is not None]
    groups = _groups(report, own_coded, card_coded, (vendor.target or "") if vendor else "", settings, blocks,
                     mappings)
    if blocks:
        return Plan(blocked=tuple(blocks), notes=tuple(notes))
    postings = _postings(report, groups, date)
    if not postings:  # also when every grouped journal line nets to zero: no empty transaction is sent
        notes.append(Block(report.report_id, "nothing to post: no expense is owed to the employee or set to post"))
    return Plan(postings=tuple(postings), notes=tuple(notes))


def _kept_expenses(report: Report, settings: PlanSettings, notes: list[Block]) -> list[Expense]:
    kept = []
    for e in report.expenses:
        if e.amount == 0:
            notes.append(Block(report.report_id, "a 0.00 expense is left out", field="amount",
                               expense_id=e.transaction_id))
        elif not e.reimbursable and settings.non_reimbursable is NonReimbursablePolicy.EXCLUDE:
            notes.append(Block(
                report.report_id, f"company-card expense of {e.amount} left out: it is not owed to the employee",
                fix='to post card expenses set quickbooks.non_reimbursable = "credit_card" and card_account '
                    '(or "debit_card", "bill" or "journal")',
                field="reimbursable", expense_id=e.transaction_id,
            ))
        else:
            kept.append(e)
    return kept


def _groups(
    report: Report, own: list[Coded], card: list[Coded], vendor: str, settings: PlanSettings, blocks: list[Block],
    mappings: Mappings,
) -> list[Group]:
    groups = []
    if own:
        kind = _own_kind(own, settings)
        group = kind.group(report, own, vendor, kind.account(settings), settings, blocks)
        if group is None:
            return []
        groups.append(group)
    if card and settings.non_reimbursable is NonReimbursablePolicy.CREDIT_CARD:
        card_groups = credit_card.card_groups(report, card, mappings, settings, blocks)
        if blocks:
            return []
        groups.extend(card_groups)
    elif card:
        kind, payee, account = _card_kind(vendor, settings)
        group = kind.group(report, card, payee, account, settings, blocks, card=True)
        if group is None:
            return []
        groups.append(group)
    return groups


def _own_kind(own: list[Coded], settings: PlanSettings) -> PostingKind:
    """The kind reimbursable expenses are booked as: ``mode``, or a vendor credit for a negative bill."""
    mode = PostingMode(settings.mode.value)
    negative = sum((c.expense.amount for c in own), ZERO) < 0
    if mode is PostingMode.BILL and negative and settings.negative_reports == "vendor_credit":
        return KINDS[PostingMode.VENDOR_CREDIT]
    return KINDS[mode]


def _card_kind(vendor: str, settings: PlanSettings) -> tuple[PostingKind, str, str]:
    """The kind, payee and closing account of a report's company-card expenses."""
    policy = settings.non_reimbursable
    if policy is NonReimbursablePolicy.DEBIT_CARD:  # paid from the bank: a check to the employee's vendor
        return KINDS[PostingMode.CHECK], vendor, settings.card_account
    if policy is NonReimbursablePolicy.BILL:  # owed to the card issuer
        return KINDS[PostingMode.BILL], settings.card_bill_vendor, settings.ap_account
    return KINDS[PostingMode.JOURNAL], "", settings.card_account  # a journal entry crediting the card account


def _postings(report: Report, groups: list[Group], date: dt.date) -> list[PlannedPosting]:
    count = sum(len(g.parts) for g in groups)
    postings = []
    part = 0
    for group in groups:
        for lines in group.parts:
            part += 1
            label = f"Expensify report {report.report_id}: {report.name}".rstrip(": ")
            if count > 1:
                label += f" (part {part} of {count})"
            postings.append(KINDS[group.mode].posting(report, group, lines, part, count, label, date))
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
