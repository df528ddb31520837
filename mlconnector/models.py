"""Values that travel between the layers: reports from Expensify, postings for QuickBooks, states.

Money is ``Decimal`` (from integer cents), never ``float``. Every class here is frozen; nothing here
does I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

CENT = Decimal("0.01")


def cents_to_decimal(cents: int) -> Decimal:
    """Turn integer cents (Expensify's unit) into an exact two-place Decimal."""
    return (Decimal(cents) / 100).quantize(CENT)


def decimal_to_cents(amount: Decimal) -> int:
    """Turn a two-place Decimal back into integer cents (how the state file stores money)."""
    return int((amount * 100).to_integral_exact())


class PostingState(StrEnum):
    """Where a posting stands (ARCHITECTURE.md, "The posting state machine")."""

    PLANNED = "planned"  # built by plan.py, not yet checked against mappings
    QUEUED = "queued"  # ready; the next Web Connector session will send it
    BLOCKED = "blocked"  # cannot be sent until a person fixes something (reason recorded)
    SENT = "sent"  # handed to the Web Connector; no answer yet
    IN_DOUBT = "in_doubt"  # the answer was lost; QuickBooks must be asked before anything else
    POSTED = "posted"  # QuickBooks answered status 0 with a TxnID
    FAILED = "failed"  # QuickBooks refused it (code and message recorded)


class PostingMode(StrEnum):
    """How a report is posted to QuickBooks."""

    BILL = "bill"
    JOURNAL = "journal"
    CHECK = "check"
    VENDOR_CREDIT = "vendor_credit"  # a bill-mode report whose reimbursable total is negative
    CREDIT_CARD_CHARGE = "credit_card_charge"  # one company-card purchase
    CREDIT_CARD_CREDIT = "credit_card_credit"  # one company-card refund
    BILL_PAYMENT = "bill_payment"  # a report's bills paid once Expensify reimbursed the employee


# Transactions that carry expenses with the sign flipped (what the vendor or card gives back).
CREDIT_MODES = frozenset({PostingMode.VENDOR_CREDIT, PostingMode.CREDIT_CARD_CREDIT})


class ReimbursableMode(StrEnum):
    """How reports' reimbursable expenses are booked (``quickbooks.mode``); each value names the
    posting mode of its transaction kind."""

    BILL = "bill"
    CHECK = "check"
    JOURNAL = "journal"


class TxnDateRule(StrEnum):
    """Which date a posting carries in QuickBooks."""

    LAST_EXPENSE = "last_expense"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    POSTING_DAY = "posting_day"


class NonReimbursablePolicy(StrEnum):
    """What happens to company-card (non-reimbursable) expenses."""

    EXCLUDE = "exclude"  # left out of bills, with an audit note
    JOURNAL = "journal"  # posted in a journal entry crediting the configured card account
    CREDIT_CARD = "credit_card"  # one credit-card charge per expense, one credit per refund
    DEBIT_CARD = "debit_card"  # one check per report from the card's bank account
    BILL = "bill"  # one bill per report owed to card_bill_vendor (the card issuer)


class Side(StrEnum):
    """Side of a journal entry line."""

    DEBIT = "debit"
    CREDIT = "credit"


class ListKind(StrEnum):
    """QuickBooks lists that postings reference."""

    ACCOUNT = "account"
    VENDOR = "vendor"
    CLASS = "class"
    CUSTOMER = "customer"
    ITEM = "item"  # service, non-inventory and other-charge items a category may map to


@dataclass(frozen=True)
class Expense:
    """One expense line of an Expensify report.

    ``amount`` is in the report's currency: positive for a purchase, negative for a refund.
    ``tags`` holds the tag levels already split on unescaped colons (``\\:`` became ``:``).
    """

    transaction_id: str
    date: dt.date
    merchant: str
    amount: Decimal
    category: str
    currency: str = "USD"
    tags: tuple[str, ...] = ()
    comment: str = ""
    reimbursable: bool = True
    billable: bool = False
    card: str = ""  # the company card: its last four digits, else Expensify's card ID ("" when unknown)
    receipt_url: str = ""  # the receipt image's address in Expensify ("" when none)


def report_field_key(name: str) -> str:
    """How Expensify's export names a report field: ``customField.NAME`` with non-alphanumerics as ``_``."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in name.strip())


# The report fields planning reads (plan.py), plus the expenses: what the fingerprint covers.
POSTING_FIELDS = ("report_id", "name", "submitter_email", "currency", "total", "submitted", "approved")


@dataclass(frozen=True)
class Report:
    """An approved or closed Expensify report, validated and ready to plan.

    ``report_id`` is opaque: numeric and base-62 IDs are both kept as text.
    """

    report_id: str
    name: str
    submitter_email: str
    status: str
    currency: str
    total: Decimal
    expenses: tuple[Expense, ...] = ()
    policy_id: str = ""
    policy_name: str = ""
    submitter_name: str = ""
    created: dt.date | None = None
    submitted: dt.date | None = None
    approved: dt.date | None = None
    # Header-level report fields the configuration asks for (name as the export names it, value), sorted.
    report_fields: tuple[tuple[str, str], ...] = ()
    # When Expensify paid the employee (None: not reimbursed, or Expensify gave no date) and whether by ACH.
    # Outside the fingerprint: being reimbursed is no edit of what was posted.
    reimbursed: dt.date | None = None
    ach_reimbursed: bool | None = None

    @property
    def is_reimbursed(self) -> bool:
        """Expensify says the employee was paid: status Reimbursed, or a reimbursement date."""
        return self.status.strip().casefold() == "reimbursed" or self.reimbursed is not None

    def field(self, name: str) -> str:
        """A report field's value ("" when absent); ``name`` as configured (non-alphanumerics become ``_``)."""
        wanted = report_field_key(name)
        return next((value for key, value in self.report_fields if key == wanted), "")

    def fingerprint(self) -> str:
        """A stable digest of what the posting is made from; used to spot edits.

        Status, policy and display names are left out: Expensify moves a posted report from Approved to
        Reimbursed by itself, and that must not read as "changed after posting".
        """
        material = {name: getattr(self, name) for name in POSTING_FIELDS}
        material["expenses"] = [_expense_material(e) for e in self.expenses]
        if self.report_fields:  # joined the fingerprint later: reports without any keep theirs
            material["report_fields"] = [list(pair) for pair in self.report_fields]
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode("utf-8")).hexdigest()


_EXPENSE_FIELDS = tuple(f.name for f in fields(Expense))


def _expense_material(expense: Expense) -> dict[str, Any]:
    # What asdict() gave, without its deep copies (the fingerprint of every pulled report goes through here):
    # every field is a str, bool, date, Decimal or a tuple of str, which json.dumps prints the same either way.
    material = {name: getattr(expense, name) for name in _EXPENSE_FIELDS}
    # The card joined the fingerprint later: left out when empty, so reports pulled before keep theirs.
    if not material["card"]:
        del material["card"]
    # A receipt only adds a link to the memo: attaching one after posting is no edit of what was posted.
    del material["receipt_url"]
    return material


@dataclass(frozen=True)
class Line:
    """One line of a planned posting.

    Bill lines: ``amount`` may be negative (a refund). Journal lines: ``amount`` is never negative;
    the ``side`` says debit or credit. ``entity`` is the journal line's EntityRef (the vendor on the
    A/P line, the customer on a billable line).
    """

    account: str
    amount: Decimal
    memo: str = ""
    side: Side = Side.DEBIT
    customer: str | None = None
    klass: str | None = None
    entity: str | None = None
    billable: bool = False
    expense_id: str | None = None
    item: str | None = None  # an item line (the item carries its own account) instead of an expense line
    txn_id: str | None = None  # a bill payment's line: the bill (part) it pays, by TxnID


@dataclass(frozen=True)
class PlannedPosting:
    """One QuickBooks transaction to create: a whole report, or one part of a large report.

    The idempotency key is ``(report_id, part)``. ``account`` is the A/P account of a bill, or the
    account of the journal entry's balancing credit line.
    """

    report_id: str
    part: int
    part_count: int
    mode: PostingMode
    ref_number: str
    txn_date: dt.date
    vendor: str
    account: str
    lines: tuple[Line, ...]
    memo: str = ""
    to_be_printed: bool = False  # a check QuickBooks numbers when it prints: sent without a RefNumber

    @property
    def total(self) -> Decimal:
        """What the posting moves: the sum of its lines, or a journal entry's total debits."""
        if self.mode is PostingMode.JOURNAL:
            return sum((ln.amount for ln in self.lines if ln.side is Side.DEBIT), Decimal("0.00"))
        return sum((ln.amount for ln in self.lines), Decimal("0.00"))

    @property
    def expense_total(self) -> Decimal:
        """The signed sum of the expenses this posting carries (refunds negative), balancing lines left out.

        Summed over a report's postings it equals the report's posted expenses to the cent. A vendor
        credit or a card credit carries its expenses with the sign flipped; a journal entry by side.
        """
        def signed(line: Line) -> Decimal:
            if self.mode is PostingMode.JOURNAL:
                return line.amount if line.side is Side.DEBIT else -line.amount
            return -line.amount if self.mode in CREDIT_MODES else line.amount

        return sum((signed(ln) for ln in self.lines if ln.expense_id is not None), Decimal("0.00"))

    def references(self) -> dict[ListKind, frozenset[str]]:
        """Every QuickBooks list name this posting refers to, by list, for the pre-send re-query."""
        accounts = {a for a in (self.account, *(ln.account for ln in self.lines)) if a}
        items = {ln.item for ln in self.lines if ln.item}
        vendors = {self.vendor} if self.vendor else set()
        vendors |= {ln.entity for ln in self.lines if ln.entity and ln.entity == self.vendor}
        customers = {ln.customer for ln in self.lines if ln.customer}
        classes = {ln.klass for ln in self.lines if ln.klass}
        return {
            ListKind.ACCOUNT: frozenset(accounts),
            ListKind.VENDOR: frozenset(vendors),
            ListKind.CLASS: frozenset(classes),
            ListKind.CUSTOMER: frozenset(customers),
            ListKind.ITEM: frozenset(items),
        }


@dataclass(frozen=True)
class Block:
    """Why a report (or one expense of it) cannot be posted, in words a bookkeeper can act on."""

    report_id: str
    reason: str
    fix: str = ""
    field: str | None = None
    expense_id: str | None = None

    def __str__(self) -> str:
        where = f"report {self.report_id}"
        if self.expense_id:
            where += f", expense {self.expense_id}"
        if self.field:
            where += f", {self.field}"
        text = f"{where}: {self.reason}"
        return f"{text} — {self.fix}" if self.fix else text


@dataclass(frozen=True)
class Plan:
    """What plan.py decided for a set of reports: postings to queue and reports blocked."""

    postings: tuple[PlannedPosting, ...] = ()
    blocked: tuple[Block, ...] = ()
    notes: tuple[Block, ...] = field(default=())  # informational (e.g. card expenses left out)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (Decimals as strings), for --json and audit details."""
        return json.loads(json.dumps(asdict(self), default=str))  # type: ignore[no-any-return]
