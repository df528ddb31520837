"""Pure mapping: Expensify categories, tags and submitters to QuickBooks names, or why not.

Six kinds of mapping (``mlconnector map set KIND SOURCE TARGET``):

| kind       | source (Expensify)        | target (QuickBooks)      | fallback when unmapped                     |
|------------|---------------------------|--------------------------|--------------------------------------------|
| category   | category name             | account full name        | the account of the same full name          |
| class      | tag at ``class_tag_level``| class full name          | the class of the same full name            |
| customer   | tag at ``customer_tag_level`` | customer:job full name | the customer:job of the same full name     |
| employee   | submitter email           | vendor name              | the vendor whose email matches             |
| card       | card's last four / card ID| credit card account      | ``quickbooks.card_account``                |
| merchant   | merchant name             | vendor name (card payee) | the same-named vendor, else card_vendor_fallback |

A same-name fallback is checked against the cached QuickBooks list when the server has fetched it,
and used unchecked (QuickBooks itself will refuse a missing name) when no list is cached yet;
:class:`Resolution` says which. A mapped target that the cached list lacks, or holds as inactive,
is *dangling* and blocks. Nothing here does I/O: the lists and mappings come in as values.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# Re-exported: callers import the lists from here.
from mlconnector.mapping.qb_lists import QbLists as QbLists
from mlconnector.mapping.qb_lists import QbRecord as QbRecord
from mlconnector.models import Expense, ListKind, Report


class MappingKind(StrEnum):
    """What a mapping translates."""

    CATEGORY = "category"
    CLASS = "class"
    CUSTOMER = "customer"
    EMPLOYEE = "employee"
    CARD = "card"  # a company card (last four digits or card ID) -> its credit card account
    MERCHANT = "merchant"  # a card expense's merchant -> the payee vendor of its charge or credit
    ITEM = "item"  # a category -> a QuickBooks item: its expenses become item lines


TARGET_LIST: Mapping[MappingKind, ListKind] = {
    MappingKind.CATEGORY: ListKind.ACCOUNT,
    MappingKind.CLASS: ListKind.CLASS,
    MappingKind.CUSTOMER: ListKind.CUSTOMER,
    MappingKind.EMPLOYEE: ListKind.VENDOR,
    MappingKind.CARD: ListKind.ACCOUNT,
    MappingKind.MERCHANT: ListKind.VENDOR,
    MappingKind.ITEM: ListKind.ITEM,
}

# Longest full name QuickBooks accepts in a reference to each list (QBXML.md §9).
MAX_TARGET_LENGTH: Mapping[MappingKind, int] = {
    MappingKind.CATEGORY: 159,
    MappingKind.CLASS: 159,
    MappingKind.CUSTOMER: 209,
    MappingKind.EMPLOYEE: 41,
    MappingKind.CARD: 159,
    MappingKind.MERCHANT: 41,
    MappingKind.ITEM: 159,
}


class How(StrEnum):
    """How a name was resolved (shown by ``map check``)."""

    MAPPED = "mapped"  # an explicit mapping whose target the cached list confirms
    MAPPED_UNCHECKED = "mapped_unchecked"  # an explicit mapping; no cached list to check it against
    SAME_NAME = "same_name"  # unmapped; the cached list has a record of the same full name
    SAME_NAME_UNCHECKED = "same_name_unchecked"  # unmapped; no cached list yet, the name is used as is
    EMAIL_MATCH = "email_match"  # unmapped employee; the cached vendor with that email
    DEFAULT = "default"  # unmapped card or merchant; the configured card account or fallback vendor
    UNRESOLVED = "unresolved"  # blocks


@dataclass(frozen=True)
class Resolved:
    """The QuickBooks name for one Expensify name, or why there is none (``target`` is None)."""

    kind: MappingKind
    source: str
    target: str | None
    how: How
    problem: str = ""
    fix: str = ""

    @property
    def blocks(self) -> bool:
        """True when the name cannot be used."""
        return self.target is None


def normalize_source(kind: MappingKind, source: str) -> str:
    """The key a source is stored under: emails compare case-insensitively, other names exactly."""
    source = source.strip()
    return source.casefold() if kind in (MappingKind.EMPLOYEE, MappingKind.MERCHANT) else source


@functools.lru_cache(maxsize=65536)  # the same few hundred names are checked for every report planned
def storable(name: str) -> bool:
    """True when QuickBooks can hold every character of ``name`` (no control or format characters, no emoji)."""
    return all(ord(c) <= 0xFFFF and not unicodedata.category(c).startswith("C") for c in name)


_SAFE_ARG = re.compile(r"^[A-Za-z0-9@._+:/=-]+$")


def _quote(arg: str) -> str:
    # Double quotes work in cmd.exe, PowerShell and POSIX shells alike; bookkeepers are often on Windows.
    return arg if _SAFE_ARG.match(arg) else '"' + arg.replace('"', '\\"') + '"'


def command(*args: str) -> str:
    """A copy-pasteable ``mlconnector`` command line (arguments quoted when needed)."""
    return " ".join(["mlconnector", *(_quote(a) for a in args)])


@dataclass(frozen=True)
class Mappings:
    """Compiled mappings plus the cached QuickBooks lists and the tag levels from the config.

    ``rules[kind]`` maps a normalized source to its target. Tag levels count from 1; 0 turns the
    kind off.
    """

    rules: Mapping[MappingKind, Mapping[str, str]] = field(default_factory=dict)
    lists: QbLists = field(default_factory=QbLists)
    class_tag_level: int = 1
    customer_tag_level: int = 2
    # Each name resolves the same way for the life of this object (rules and lists are fixed): planning
    # 10,000 reports asks for the same few hundred names again and again.
    _resolved: dict[tuple[MappingKind, str], Resolved] = field(default_factory=dict, init=False, repr=False,
                                                               compare=False)

    @classmethod
    def compile(
        cls,
        rows: Iterable[tuple[str, str, str]],
        lists: QbLists | None = None,
        *,
        class_tag_level: int = 1,
        customer_tag_level: int = 2,
    ) -> Mappings:
        """Mappings from ``(kind, source, target)`` rows (as stored); unknown kinds are ignored."""
        rules: dict[MappingKind, dict[str, str]] = {k: {} for k in MappingKind}
        for kind, source, target in rows:
            try:
                mk = MappingKind(kind)
            except ValueError:
                continue
            rules[mk][normalize_source(mk, source)] = target
        return cls(rules, lists or QbLists(), class_tag_level, customer_tag_level)

    # ------------------------------------------------------------------ single names

    def resolve(self, kind: MappingKind, source: str) -> Resolved:
        """The QuickBooks name for ``source`` of ``kind``, with how it was found, or the problem and fix."""
        key = (kind, source)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(kind, source)
        return found

    def _resolve(self, kind: MappingKind, source: str) -> Resolved:
        if kind is MappingKind.EMPLOYEE:
            return self._vendor(source)
        if kind is MappingKind.CARD:
            return self.card_account(source, "")
        if kind is MappingKind.MERCHANT:
            return self.payee(source, "")
        target = self.rules.get(kind, {}).get(normalize_source(kind, source))
        if target is not None:
            return self._check_mapped(kind, source, target)
        return self._same_name(kind, source)

    def _check_mapped(self, kind: MappingKind, source: str, target: str) -> Resolved:
        list_kind = TARGET_LIST[kind]
        if list_kind not in self.lists.cached:
            return Resolved(kind, source, target, How.MAPPED_UNCHECKED)
        record = self.lists.find(list_kind, target)
        if record is not None and record.is_active:
            return Resolved(kind, source, record.full_name, How.MAPPED)
        state = "inactive in" if record is not None else "not in"
        return Resolved(
            kind, source, None, How.UNRESOLVED,
            problem=f'{kind} "{source}" is mapped to {list_kind} "{target}", which is {state} QuickBooks',
            fix=f"{'reactivate it in QuickBooks, or ' if record else ''}"
                f"run {command('map', 'set', kind.value, source, 'NEW ' + list_kind.value.upper())}"
                f" (then mlconnector map refresh if QuickBooks changed)",
        )

    def _same_name(self, kind: MappingKind, source: str) -> Resolved:
        list_kind = TARGET_LIST[kind]
        name = source.strip()
        fix = f"run {command('map', 'set', kind.value, name, list_kind.value.upper() + ' FULL NAME')}"
        if not name:
            return Resolved(kind, source, None, How.UNRESOLVED, problem=f"{kind} is empty", fix=fix)
        if len(name) > MAX_TARGET_LENGTH[kind] or not storable(name):
            why = "too long for" if len(name) > MAX_TARGET_LENGTH[kind] else "holds characters QuickBooks cannot store in"
            return Resolved(
                kind, source, None, How.UNRESOLVED,
                problem=f'{kind} "{name}" is unmapped and {why} a {list_kind} name', fix=fix,
            )
        if list_kind not in self.lists.cached:
            return Resolved(kind, source, name, How.SAME_NAME_UNCHECKED)
        record = self.lists.find(list_kind, name)
        if record is not None and record.is_active:
            return Resolved(kind, source, record.full_name, How.SAME_NAME)
        state = "is inactive" if record is not None else "does not exist"
        return Resolved(
            kind, source, None, How.UNRESOLVED,
            problem=f'{kind} "{source}" is unmapped and the QuickBooks {list_kind} of that name {state}', fix=fix,
        )

    def _vendor(self, email: str) -> Resolved:
        kind = MappingKind.EMPLOYEE
        target = self.rules.get(kind, {}).get(normalize_source(kind, email))
        if target is not None:
            return self._check_mapped(kind, email, target)
        fix = f"run {command('map', 'set', 'employee', email.strip(), 'VENDOR NAME')}"
        if ListKind.VENDOR not in self.lists.cached:
            return Resolved(
                kind, email, None, How.UNRESOLVED,
                problem=f"no vendor is mapped to {email} and the QuickBooks vendor list has not been fetched yet",
                fix=fix + " (or let the Web Connector run once to match vendors by email)",
            )
        matches = self.lists.vendors_with_email(email)
        if len(matches) == 1:
            return Resolved(kind, email, matches[0].full_name, How.EMAIL_MATCH)
        if matches:
            names = ", ".join(f'"{m.full_name}"' for m in matches)
            return Resolved(
                kind, email, None, How.UNRESOLVED,
                problem=f"several QuickBooks vendors have the email {email} ({names})", fix=fix,
            )
        return Resolved(
            kind, email, None, How.UNRESOLVED,
            problem=f"no QuickBooks vendor has the email {email} and none is mapped to it",
            fix=fix + " (or put the email in the vendor's Main Email field in QuickBooks)",
        )

    def card_account(self, card: str, default: str) -> Resolved:
        """The credit card account of a company card: its ``card`` mapping, else ``default`` (card_account)."""
        kind = MappingKind.CARD
        target = self.rules.get(kind, {}).get(normalize_source(kind, card)) if card.strip() else None
        if target is not None:
            return self._check_mapped(kind, card, target)
        if default:
            return self._default(kind, card, default, ListKind.ACCOUNT)
        return Resolved(
            kind, card, None, How.UNRESOLVED,
            problem=f'card "{card}" is not mapped to a credit card account and quickbooks.card_account is not set',
            fix=f"run {command('map', 'set', 'card', card.strip() or 'LAST4', 'CREDIT CARD ACCOUNT')}"
                " or set quickbooks.card_account in config.toml",
        )

    def payee(self, merchant: str, fallback: str) -> Resolved:
        """The payee of a card charge: the ``merchant`` mapping, else the vendor of the merchant's name
        (ignoring case and surrounding spaces), else ``fallback`` (card_vendor_fallback).

        Until the vendor list is cached an unmapped merchant blocks: the report is planned again
        when the lists arrive, so a same-named vendor is never passed over for the fallback.
        """
        kind = MappingKind.MERCHANT
        name = merchant.strip()
        target = self.rules.get(kind, {}).get(normalize_source(kind, name)) if name else None
        if target is not None:
            return self._check_mapped(kind, merchant, target)
        fix = f"run {command('map', 'set', 'merchant', name or 'MERCHANT', 'VENDOR NAME')}"
        if ListKind.VENDOR not in self.lists.cached:
            return Resolved(
                kind, merchant, None, How.UNRESOLVED,
                problem=f'merchant "{name}" is unmapped and the QuickBooks vendor list has not been fetched yet',
                fix=fix + " (or let the Web Connector run once to match vendors by name)",
            )
        record = self.lists.find(ListKind.VENDOR, name) if name else None
        if record is not None and record.is_active:
            return Resolved(kind, merchant, record.full_name, How.SAME_NAME)
        if fallback:
            return self._default(kind, merchant, fallback, ListKind.VENDOR)
        return Resolved(kind, merchant, None, How.UNRESOLVED,
                        problem=f'merchant "{name}" matches no QuickBooks vendor', fix=fix)

    def _default(self, kind: MappingKind, source: str, default: str, list_kind: ListKind) -> Resolved:
        if list_kind not in self.lists.cached:
            return Resolved(kind, source, default, How.DEFAULT)
        record = self.lists.find(list_kind, default)
        if record is not None and record.is_active:
            return Resolved(kind, source, record.full_name, How.DEFAULT)
        state = "is inactive in" if record is not None else "is not in"
        setting = "card_account" if kind is MappingKind.CARD else "card_vendor_fallback"
        return Resolved(
            kind, source, None, How.UNRESOLVED,
            problem=f'{kind} "{source.strip()}" falls back to {list_kind} "{default}" (quickbooks.{setting}), '
                    f"which {state} QuickBooks",
            fix=f"add it in QuickBooks (then mlconnector map refresh), change quickbooks.{setting}, or run "
                f"{command('map', 'set', kind.value, source.strip() or kind.value.upper(), list_kind.value.upper())}",
        )

    # ------------------------------------------------------------------ expenses and reports

    def tag(self, expense: Expense, level: int) -> str | None:
        """The expense's tag at ``level`` (1-based), or None when the level is off or the tag is empty."""
        if level <= 0 or len(expense.tags) < level:
            return None
        value = expense.tags[level - 1]
        return value if value.strip() else None

    def klass(self, expense: Expense) -> Resolved | None:
        """The class for an expense (from its tag at ``class_tag_level``), or None when it has none."""
        tag = self.tag(expense, self.class_tag_level)
        return None if tag is None else self.resolve(MappingKind.CLASS, tag)

    def customer(self, expense: Expense) -> Resolved | None:
        """The customer:job for an expense (from its tag at ``customer_tag_level``), or None."""
        tag = self.tag(expense, self.customer_tag_level)
        return None if tag is None else self.resolve(MappingKind.CUSTOMER, tag)

    def item(self, expense: Expense) -> Resolved | None:
        """The item an expense's category maps to, or None (then it is an expense line on its account)."""
        return self._item(expense.category)

    def _item(self, category: str) -> Resolved | None:
        target = self.rules.get(MappingKind.ITEM, {}).get(category)
        return None if target is None else self._check_mapped(MappingKind.ITEM, category, target)

    def category(self, name: str) -> Resolved:
        """What a category's expenses post to: its item when mapped to one, else its account."""
        item = self._item(name)
        return item if item is not None else self.resolve(MappingKind.CATEGORY, name)

    def account(self, expense: Expense) -> Resolved:
        """The account for an expense's category."""
        return self.resolve(MappingKind.CATEGORY, expense.category)

    def vendor(self, report: Report) -> Resolved:
        """The vendor for a report's submitter."""
        return self.resolve(MappingKind.EMPLOYEE, report.submitter_email)

    def names_used(self, report: Report, *, needs_vendor: bool = True, cards: tuple[str, str] | None = None,
                   report_fields: tuple[str, str] = ("", "")) -> list[Resolved]:
        """Every name a report uses, resolved (what ``map check`` aggregates).

        ``cards`` = (card_account, card_vendor_fallback) when company-card expenses post as card
        charges: their cards and merchants are included. ``report_fields`` = the report fields that give
        class and customer:job to lines whose tags give none.
        """
        found: list[Resolved] = [self.vendor(report)] if needs_vendor else []
        for expense in report.expenses:
            item = self.item(expense)  # a category mapped to an item needs no account
            found.append(item if item is not None else self.account(expense))
            klass, customer = self.klass(expense), self.customer(expense)
            if klass is None and report_fields[0] and report.field(report_fields[0]):
                klass = self.resolve(MappingKind.CLASS, report.field(report_fields[0]))
            if customer is None and report_fields[1] and report.field(report_fields[1]):
                customer = self.resolve(MappingKind.CUSTOMER, report.field(report_fields[1]))
            found.extend(r for r in (klass, customer) if r is not None)
            if cards is not None and not expense.reimbursable and expense.amount != 0:
                found.append(self.card_account(expense.card, cards[0]))
                found.append(self.payee(expense.merchant, cards[1]))
        return found
