"""Pure mapping: Expensify categories, tags and submitters to QuickBooks names, or why not.

Four kinds of mapping (``mlconnector map set KIND SOURCE TARGET``):

| kind       | source (Expensify)        | target (QuickBooks)      | fallback when unmapped                     |
|------------|---------------------------|--------------------------|--------------------------------------------|
| category   | category name             | account full name        | the account of the same full name          |
| class      | tag at ``class_tag_level``| class full name          | the class of the same full name            |
| customer   | tag at ``customer_tag_level`` | customer:job full name | the customer:job of the same full name     |
| employee   | submitter email           | vendor name              | the vendor whose email matches             |

A same-name fallback is checked against the cached QuickBooks list when the server has fetched it,
and used unchecked (QuickBooks itself will refuse a missing name) when no list is cached yet;
:class:`Resolution` says which. A mapped target that the cached list lacks, or holds as inactive,
is *dangling* and blocks. Nothing here does I/O: the lists and mappings come in as values.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mlconnector.models import Expense, ListKind, Report


class MappingKind(StrEnum):
    """What a mapping translates."""

    CATEGORY = "category"
    CLASS = "class"
    CUSTOMER = "customer"
    EMPLOYEE = "employee"


TARGET_LIST: Mapping[MappingKind, ListKind] = {
    MappingKind.CATEGORY: ListKind.ACCOUNT,
    MappingKind.CLASS: ListKind.CLASS,
    MappingKind.CUSTOMER: ListKind.CUSTOMER,
    MappingKind.EMPLOYEE: ListKind.VENDOR,
}

# Longest full name QuickBooks accepts in a reference to each list (QBXML.md §9).
MAX_TARGET_LENGTH: Mapping[MappingKind, int] = {
    MappingKind.CATEGORY: 159,
    MappingKind.CLASS: 159,
    MappingKind.CUSTOMER: 209,
    MappingKind.EMPLOYEE: 41,
}


class How(StrEnum):
    """How a name was resolved (shown by ``map check``)."""

    MAPPED = "mapped"  # an explicit mapping whose target the cached list confirms
    MAPPED_UNCHECKED = "mapped_unchecked"  # an explicit mapping; no cached list to check it against
    SAME_NAME = "same_name"  # unmapped; the cached list has a record of the same full name
    SAME_NAME_UNCHECKED = "same_name_unchecked"  # unmapped; no cached list yet, the name is used as is
    EMAIL_MATCH = "email_match"  # unmapped employee; the cached vendor with that email
    UNRESOLVED = "unresolved"  # blocks


@dataclass(frozen=True)
class QbRecord:
    """One record of a cached QuickBooks list."""

    kind: ListKind
    full_name: str
    is_active: bool = True
    email: str | None = None
    list_id: str | None = None


@dataclass(frozen=True)
class QbLists:
    """The cached QuickBooks lists (``qb_lists``), by kind; a kind absent from ``cached`` was never fetched."""

    records: tuple[QbRecord, ...] = ()
    cached: frozenset[ListKind] = frozenset()

    @classmethod
    def of(cls, records: Iterable[QbRecord], cached: Iterable[ListKind] | None = None) -> QbLists:
        """Lists from records; by default every kind that has a record counts as cached."""
        items = tuple(records)
        kinds = frozenset(cached) if cached is not None else frozenset(r.kind for r in items)
        return cls(items, kinds)

    def find(self, kind: ListKind, full_name: str) -> QbRecord | None:
        """The record of that full name (case-insensitive, as QuickBooks compares names)."""
        wanted = full_name.casefold()
        for record in self.records:
            if record.kind is kind and record.full_name.casefold() == wanted:
                return record
        return None

    def vendors_with_email(self, email: str) -> list[QbRecord]:
        """Active vendors whose email is ``email`` (case-insensitive)."""
        wanted = email.strip().casefold()
        return [
            r for r in self.records
            if r.kind is ListKind.VENDOR and r.is_active and r.email and r.email.strip().casefold() == wanted
        ]


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
    return source.casefold() if kind is MappingKind.EMPLOYEE else source


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
        if kind is MappingKind.EMPLOYEE:
            return self._vendor(source)
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

    def account(self, expense: Expense) -> Resolved:
        """The account for an expense's category."""
        return self.resolve(MappingKind.CATEGORY, expense.category)

    def vendor(self, report: Report) -> Resolved:
        """The vendor for a report's submitter."""
        return self.resolve(MappingKind.EMPLOYEE, report.submitter_email)

    def names_used(self, report: Report, *, needs_vendor: bool = True) -> list[Resolved]:
        """Every name a report uses, resolved (what ``map check`` aggregates)."""
        found: list[Resolved] = [self.vendor(report)] if needs_vendor else []
        for expense in report.expenses:
            found.append(self.account(expense))
            found.extend(r for r in (self.klass(expense), self.customer(expense)) if r is not None)
        return found
