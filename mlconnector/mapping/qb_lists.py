"""The QuickBooks lists as planning sees them (cached by the Web Connector server), indexed for lookups."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mlconnector.models import ListKind


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
    _by_name: dict[tuple[ListKind, str], QbRecord] = field(init=False, repr=False, compare=False)
    _by_email: dict[str, list[QbRecord]] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, records: Iterable[QbRecord], cached: Iterable[ListKind] | None = None) -> QbLists:
        """Lists from records; by default every kind that has a record counts as cached."""
        items = tuple(records)
        kinds = frozenset(cached) if cached is not None else frozenset(r.kind for r in items)
        return cls(items, kinds)

    def __post_init__(self) -> None:
        # Looked up once per name per report while planning: with 10,000 vendors a scan each time is what
        # made re-planning slow, so the lists are indexed once (the first record of a name wins, as before).
        by_name: dict[tuple[ListKind, str], QbRecord] = {}
        by_email: dict[str, list[QbRecord]] = {}
        for record in self.records:
            by_name.setdefault((record.kind, record.full_name.casefold()), record)
            if record.kind is ListKind.VENDOR and record.is_active and record.email:
                by_email.setdefault(record.email.strip().casefold(), []).append(record)
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_by_email", by_email)

    def find(self, kind: ListKind, full_name: str) -> QbRecord | None:
        """The record of that full name (case-insensitive, as QuickBooks compares names)."""
        found: QbRecord | None = self._by_name.get((kind, full_name.casefold()))
        return found

    def vendors_with_email(self, email: str) -> list[QbRecord]:
        """Active vendors whose email is ``email`` (case-insensitive)."""
        return list(self._by_email.get(email.strip().casefold(), ()))
