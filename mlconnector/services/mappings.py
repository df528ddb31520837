"""Mappings in the state file: the only way they change, each change audited in the same transaction.

``set_mapping``, ``unset_mapping``, ``import_file`` and ``import_mappings`` validate, write and append a
``mapping_changed`` audit row (who, when, old, new) atomically. ``load_mappings`` compiles the
stored rows and the cached QuickBooks lists (``qb_lists``, filled by the Web Connector server) into
the pure :class:`~mlconnector.mapping.Mappings`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlconnector.errors import NotFoundError, UserError
from mlconnector.mapping.files import MappingFile, MappingFileError, Problem, Row
from mlconnector.mapping.rules import (
    MAX_TARGET_LENGTH,
    MappingKind,
    Mappings,
    QbLists,
    QbRecord,
    normalize_source,
    storable,
)
from mlconnector.qbxml.parse import ListRecord
from mlconnector.store import Store, qb_lists
from mlconnector.store import mappings as store_mappings
from mlconnector.store.audit import AuditEvent

KINDS = ", ".join(k.value for k in MappingKind)
_SOURCE_WORD = {MappingKind.CATEGORY: "category", MappingKind.CLASS: "tag", MappingKind.CUSTOMER: "tag",
                MappingKind.EMPLOYEE: "submitter e-mail", MappingKind.CARD: "card's last four digits",
                MappingKind.MERCHANT: "merchant name", MappingKind.ITEM: "category"}


@dataclass(frozen=True)
class MappingRow:
    """One stored mapping."""

    kind: MappingKind
    source: str
    target: str
    updated_at: str = ""


@dataclass(frozen=True)
class MappingChange:
    """What a change did: ``old``/``new`` are None when the mapping did not / does not exist."""

    kind: MappingKind
    source: str
    old: str | None
    new: str | None

    @property
    def changed(self) -> bool:
        """False when the mapping already had this value."""
        return self.old != self.new


def parse_kind(kind: str) -> MappingKind:
    """A mapping kind from user text.

    Raises:
        UserError: not one of category, class, customer, employee.
    """
    try:
        return MappingKind(kind.strip().lower())
    except ValueError:
        raise UserError(f"unknown mapping kind {kind!r}", hint=f"use one of {KINDS}") from None


def validate(kind: str | MappingKind, source: str, target: str) -> MappingRow:
    """A mapping checked and normalized as it will be stored.

    Raises:
        UserError: unknown kind, empty source or target, an employee that is not an email, a target
            longer than QuickBooks allows, or control characters.
    """
    mk = kind if isinstance(kind, MappingKind) else parse_kind(kind)
    source = normalize_source(mk, unicodedata.normalize("NFC", source))
    target = unicodedata.normalize("NFC", target).strip()
    if not source:
        raise UserError(f"the {mk} to map is empty", hint=f"give the Expensify {_SOURCE_WORD.get(mk, mk.value)}")
    if not target:
        raise UserError(f"the QuickBooks name for {mk} {source!r} is empty", hint=f"to remove it: mlconnector map unset {mk} ...")
    if mk is MappingKind.EMPLOYEE and "@" not in source:
        raise UserError(f"employee {source!r} is not an email address", hint="employees are mapped by submitter email")
    limit = MAX_TARGET_LENGTH[mk]
    if len(target) > limit:
        raise UserError(f"QuickBooks name {target[:40]!r}… is {len(target)} characters; a {mk} target allows {limit}",
                        hint=f"use the name exactly as QuickBooks shows it, at most {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in source):
        raise UserError(f"{source!r} contains control characters", hint="type the name again without them")
    if not storable(target):
        raise UserError(f"QuickBooks name {target!r} contains control characters or characters QuickBooks cannot store",
                        hint="type the name again as QuickBooks shows it")
    return MappingRow(mk, source, target)


def list_mappings(store: Store, kind: MappingKind | None = None) -> list[MappingRow]:
    """Stored mappings, by kind then source."""
    rows = store_mappings.mapping_rows(store, kind.value if kind is not None else None)
    return [MappingRow(MappingKind(k), s, t, u) for k, s, t, u in rows if k in {m.value for m in MappingKind}]


def _current(store: Store, kind: MappingKind, source: str) -> str | None:
    return store_mappings.current_target(store, kind.value, source)


def _write(store: Store, row: MappingRow, actor: str) -> MappingChange:
    old = _current(store, row.kind, row.source)
    change = MappingChange(row.kind, row.source, old, row.target)
    if not change.changed:
        return change
    store_mappings.put_mapping(store, row.kind.value, row.source, row.target)
    _audit(store, change, actor)
    return change


def _audit(store: Store, change: MappingChange, actor: str) -> None:
    store.audit.append(
        AuditEvent.MAPPING_CHANGED, actor=actor,
        detail={"kind": change.kind.value, "source": change.source, "old": change.old, "new": change.new},
    )


def set_mapping(store: Store, kind: str | MappingKind, source: str, target: str, *, actor: str) -> MappingChange:
    """Map ``source`` to ``target`` (insert or replace), audited; a no-op when already so.

    Raises:
        UserError: the mapping is invalid (see :func:`validate`).
    """
    row = validate(kind, source, target)
    with store.atomic():
        return _write(store, row, actor)


def unset_mapping(store: Store, kind: str | MappingKind, source: str, *, actor: str) -> MappingChange:
    """Remove a mapping, audited.

    Raises:
        UserError: unknown kind.
        NotFoundError: no such mapping.
    """
    mk = kind if isinstance(kind, MappingKind) else parse_kind(kind)
    key = normalize_source(mk, unicodedata.normalize("NFC", source))
    with store.atomic():
        old = _current(store, mk, key)
        if old is None:
            raise NotFoundError(f"no {mk} mapping for {key!r}", hint=f"see mlconnector map list --kind {mk}")
        store_mappings.delete_mapping(store, mk.value, key)
        change = MappingChange(mk, key, old, None)
        _audit(store, change, actor)
        return change


def check_rows(rows: Iterable[Row]) -> tuple[list[MappingRow], list[Problem]]:
    """Every row validated: the mappings to write, and every problem with the row's line.

    A row given twice with the same target counts once; the same source with two targets is a problem.
    """
    checked: dict[tuple[MappingKind, str], tuple[MappingRow, int | None]] = {}
    problems: list[Problem] = []
    for item in rows:
        try:
            row = validate(item.kind, item.source, item.target)
        except UserError as exc:
            problems.append(Problem(item.line, str(exc), exc.hint or ""))
            continue
        previous = checked.get((row.kind, row.source))
        if previous is not None and previous[0].target != row.target:
            where = f"line {previous[1]}" if previous[1] is not None else "another line"
            problems.append(Problem(
                item.line, f'{row.kind} "{row.source}" is mapped twice, to different names: "{previous[0].target}"'
                f' on {where} and "{row.target}" here', "keep one of the two lines"))
            continue
        checked.setdefault((row.kind, row.source), (row, item.line))
    return [row for row, _ in checked.values()], problems


def import_file(store: Store, mapping_file: MappingFile, *, actor: str) -> list[MappingChange]:
    """Set every mapping of a file in one transaction, or none when the file has any problem.

    Existing mappings not in the file stay.

    Raises:
        MappingFileError: every problem of the file (shape and names), each with its line.
    """
    checked, problems = check_rows(mapping_file.rows)
    if mapping_file.problems or problems:
        raise MappingFileError(mapping_file.name, [*mapping_file.problems, *problems])
    with store.atomic():
        return [_write(store, row, actor) for row in checked]


def import_mappings(store: Store, rows: Iterable[tuple[str, str, str]], *, actor: str) -> list[MappingChange]:
    """Set many mappings in one transaction (all or none); existing mappings not in ``rows`` stay.

    Raises:
        MappingFileError: every invalid row (named "row N", counting from 1), and every source given two targets.
    """
    numbered = [Row(kind, source, target, number) for number, (kind, source, target) in enumerate(rows, start=1)]
    try:
        return import_file(store, MappingFile("", tuple(numbered)), actor=actor)
    except MappingFileError as exc:
        raise MappingFileError("", exc.problems, unit="row") from None


def cached_lists(store: Store, records: Sequence[ListRecord] | None = None) -> QbLists:
    """The QuickBooks lists the Web Connector server cached in ``qb_lists`` (``records``: already read)."""
    rows = qb_lists.cached_records(store) if records is None else records
    return QbLists.of(QbRecord(r.kind, r.full_name, r.is_active, r.email, r.list_id) for r in rows)


def load_mappings(store: Store, *, class_tag_level: int = 1, customer_tag_level: int = 2,
                  records: Sequence[ListRecord] | None = None) -> Mappings:
    """The stored mappings and cached lists, compiled for planning (``records``: the lists, already read)."""
    rows = [(r.kind.value, r.source, r.target) for r in list_mappings(store)]
    return Mappings.compile(
        rows, cached_lists(store, records), class_tag_level=class_tag_level, customer_tag_level=customer_tag_level
    )
