"""Planning services: stored reports + stored mappings → postings queued or blocked, with audit rows.

- :func:`plan_and_queue` plans reports that have no posting yet (``pull`` calls it last).
- :func:`replan_unsent` plans again reports whose postings QuickBooks has not seen (blocked, or
  queued with a plan that changed); it runs after every mapping change.
- :func:`check_mappings` lists every name that pulled, unposted reports use, how it resolves, and
  the reports each unresolved name blocks (``map check``); then the names of Expensify's lists
  (``map refresh``) that no report uses yet and that still need a mapping.

Each report is written in its own transaction: its postings (or its block), the notes and the
audit rows commit together.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mlconnector.config import Config, QuickBooksConfig
from mlconnector.mapping.rules import (
    TARGET_LIST,
    How,
    MappingKind,
    Mappings,
    command,
    normalize_source,
)
from mlconnector.models import (
    Block,
    NonReimbursablePolicy,
    Plan,
    PostingMode,
    PostingState,
    Report,
)
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.qbxml.parse import ListRecord
from mlconnector.services.lists import enabled_list_names, lists_refreshed_at
from mlconnector.services.mappings import load_mappings
from mlconnector.store import Store, skips
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import (
    add_blocked_report,
    add_posting,
    delete_unsent_postings,
    posting_to_json,
    postings_for_report,
)
from mlconnector.store.reports import (
    load_report,
    reports_not_seen_by_quickbooks,
    reports_only_in,
    unplanned_report_ids,
)

UNSENT = (PostingState.QUEUED, PostingState.BLOCKED)
PLAN_BATCH = 200  # reports planned per transaction


@dataclass(frozen=True)
class PlanSummary:
    """What a planning run did, per report."""

    queued: tuple[str, ...] = ()  # reports with postings queued
    postings_queued: int = 0
    blocked: tuple[Block, ...] = ()
    notes: tuple[Block, ...] = ()
    nothing_to_post: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # re-planned to the same result; left as they were

    @property
    def blocked_reports(self) -> tuple[str, ...]:
        """Report IDs blocked, in order, once each."""
        return tuple(dict.fromkeys(b.report_id for b in self.blocked))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "queued": list(self.queued), "postings_queued": self.postings_queued,
            "blocked": [_block_dict(b) for b in self.blocked], "blocked_reports": list(self.blocked_reports),
            "notes": [_block_dict(b) for b in self.notes], "nothing_to_post": list(self.nothing_to_post),
            "unchanged": list(self.unchanged),
        }


def _block_dict(block: Block) -> dict[str, Any]:
    return {"report_id": block.report_id, "expense_id": block.expense_id, "field": block.field,
            "reason": block.reason, "fix": block.fix}


def settings_for(config: Config | QuickBooksConfig) -> PlanSettings:
    """The plan settings from the ``[quickbooks]`` section."""
    qb = config.quickbooks if isinstance(config, Config) else config
    return PlanSettings(
        mode=qb.mode, txn_date=qb.txn_date, ap_account=qb.ap_account,
        journal_credit_account=qb.journal_credit_account, max_lines_per_txn=qb.max_lines_per_txn,
        non_reimbursable=qb.non_reimbursable, card_account=qb.card_account, check_account=qb.check_account,
        check_to_print=qb.check_to_print, negative_reports=qb.negative_reports, card_bill_vendor=qb.card_bill_vendor,
        journal_lines=qb.journal_lines, receipt_links=qb.receipt_links, class_report_field=qb.class_report_field,
        customer_report_field=qb.customer_report_field,
        card_vendor_fallback=qb.card_vendor_fallback,
    )


def mappings_for(store: Store, config: Config | QuickBooksConfig,
                 records: Sequence[ListRecord] | None = None) -> Mappings:
    """Stored mappings and cached lists, with the tag levels from the config (``records``: the lists, already
    read)."""
    qb = config.quickbooks if isinstance(config, Config) else config
    return load_mappings(store, class_tag_level=qb.class_tag_level, customer_tag_level=qb.customer_tag_level,
                         records=records)


def block_reason(blocks: Sequence[Block]) -> str:
    """The text stored in ``postings.reason`` for a blocked report: one block per line."""
    return "\n".join(str(b) for b in blocks)


def _skip_key(report_fingerprint: str, settings: PlanSettings) -> str:
    # A skip holds only while both the report and the settings that shaped its plan are the same:
    # switching non_reimbursable to "journal" must bring card-only reports back.
    digest = hashlib.sha256(repr(settings).encode("utf-8")).hexdigest()[:16]
    return f"{report_fingerprint}:{digest}"


def reports_to_plan(store: Store, settings: PlanSettings | None = None) -> list[str]:
    """Unplanned reports, minus those already found to have nothing to post (report and settings unchanged)."""
    digest = _skip_key("", settings or PlanSettings())
    skipped = skips.skipped_reports(store, digest)
    return [rid for rid in unplanned_report_ids(store) if rid not in skipped]


def plan_and_queue(
    store: Store,
    config: Config | QuickBooksConfig,
    report_ids: Iterable[str] | None = None,
    *,
    today: dt.date,
    actor: str = "plan",
) -> PlanSummary:
    """Plan reports with no posting yet and write them queued or blocked, with notes, in the audit.

    ``report_ids=None`` plans every such report; given IDs that already have postings are left
    alone (re-planning is :func:`replan_unsent`). ``today`` is the posting day.

    Raises:
        NotFoundError: a given report ID was never pulled.
        StoreError: the state file cannot be written.
    """
    wanted = reports_to_plan(store, settings_for(config))
    if report_ids is not None:
        chosen = list(dict.fromkeys(report_ids))
        for rid in chosen:
            load_report(store, rid)  # raises NotFoundError for an unknown ID
        wanted = [rid for rid in chosen if rid in set(wanted)]
    return _run(store, config, wanted, today=today, actor=actor, replace=False)


def replan_unsent(
    store: Store,
    config: Config | QuickBooksConfig,
    *,
    today: dt.date,
    actor: str,
    why: str = "mappings changed",
    report_ids: Iterable[str] | None = None,
    records: Sequence[ListRecord] | None = None,
) -> PlanSummary:
    """Plan again every report whose postings are all blocked or queued; keep those whose plan is unchanged.

    ``records``: the QuickBooks lists, when the caller has just read them.

    Raises:
        StoreError: the state file cannot be written.
    """
    candidates = _unsent_reports(store)
    if report_ids is not None:
        chosen = set(report_ids)
        candidates = [rid for rid in candidates if rid in chosen]
    return _run(store, config, candidates, today=today, actor=actor, replace=True, why=why, records=records)


def unsent_reports(store: Store) -> list[str]:
    """Reports all of whose postings are blocked or queued (QuickBooks has seen none of them), by ID."""
    return reports_only_in(store, (s.value for s in UNSENT))


_unsent_reports = unsent_reports


def _run(
    store: Store, config: Config | QuickBooksConfig, report_ids: Sequence[str], *, today: dt.date, actor: str,
    replace: bool, why: str = "", records: Sequence[ListRecord] | None = None,
) -> PlanSummary:
    settings, mappings = settings_for(config), mappings_for(store, config, records)
    queued: list[str] = []
    blocked: list[Block] = []
    notes: list[Block] = []
    nothing: list[str] = []
    unchanged: list[str] = []
    count = 0
    for start in range(0, len(report_ids), PLAN_BATCH):
        # One commit per batch, one savepoint per report: each report is still written whole or not at all,
        # and a killed run loses at most the batch's plans, which the next run makes again.
        with store.atomic():
            for rid in report_ids[start:start + PLAN_BATCH]:
                report = load_report(store, rid)
                plan = plan_report(report, mappings, settings, posting_day=today)
                if replace and _same_as_stored(store, report, plan):
                    unchanged.append(rid)
                    continue
                with store.atomic():
                    if replace:
                        dropped = delete_unsent_postings(store, rid)
                        store.audit.append(AuditEvent.NOTE, actor=actor, report_id=rid,
                                           detail={"replanned": why, "unsent_postings_dropped": dropped})
                    count += _write(store, report, plan, actor, settings)
                blocked.extend(plan.blocked)
                notes.extend(plan.notes)
                if plan.postings:
                    queued.append(rid)
                elif not plan.blocked:
                    nothing.append(rid)
    return PlanSummary(tuple(queued), count, tuple(blocked), tuple(notes), tuple(nothing), tuple(unchanged))


def _write(store: Store, report: Report, plan: Plan, actor: str, settings: PlanSettings) -> int:
    fingerprint = report.fingerprint()
    mode = settings.mode
    skips.clear_skip(store, report.report_id)
    for note in plan.notes:
        store.audit.append(AuditEvent.NOTE, actor=actor, report_id=report.report_id, detail=_block_dict(note))
    if plan.blocked:
        add_blocked_report(store, report.report_id, mode=PostingMode(mode.value), report_fingerprint=fingerprint,
                           reason=block_reason(plan.blocked), actor=actor)
        return 0
    if not plan.postings:
        reason = plan.notes[-1].reason if plan.notes else "nothing to post"
        skips.add_skip(store, report.report_id, _skip_key(fingerprint, settings), reason)
        return 0
    for posting in plan.postings:
        add_posting(store, posting, state=PostingState.QUEUED, report_fingerprint=fingerprint, actor=actor)
    return len(plan.postings)


def _same_as_stored(store: Store, report: Report, plan: Plan) -> bool:
    records = postings_for_report(store, report.report_id)
    if plan.blocked:
        return (
            len(records) == 1 and records[0].state is PostingState.BLOCKED and records[0].posting is None
            and records[0].reason == block_reason(plan.blocked)
        )
    if not plan.postings or len(records) != len(plan.postings):
        return False
    return all(
        r.state is PostingState.QUEUED and r.posting is not None and posting_to_json(r.posting) == posting_to_json(p)
        for r, p in zip(records, plan.postings)
    )


# ------------------------------------------------------------------------------ map check


@dataclass(frozen=True)
class NameUse:
    """One Expensify name, how it resolves, and which unposted reports use it.

    ``origin`` is ``report`` for a name that pulled reports use, ``expensify_list`` for a name that
    only Expensify's lists (``map refresh``) hold: no report uses it yet (``reports`` is empty and
    ``policies`` names the policies that have it).
    """

    kind: MappingKind
    source: str
    target: str | None
    how: How
    problem: str
    fix: str
    reports: tuple[str, ...]
    origin: str = "report"
    policies: tuple[str, ...] = ()

    @property
    def blocks(self) -> bool:
        """True when the name stops its reports from being posted."""
        return self.target is None and bool(self.reports)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        data = {"kind": self.kind.value, "source": self.source, "target": self.target, "how": self.how.value,
                "problem": self.problem, "fix": self.fix, "reports": list(self.reports), "origin": self.origin}
        return data | ({"policies": list(self.policies)} if self.origin == EXPENSIFY_LIST else {})


EXPENSIFY_LIST = "expensify_list"


@dataclass(frozen=True)
class MappingCheck:
    """Everything ``map check`` shows.

    ``not_used_yet`` holds the enabled names of Expensify's lists that no unposted report uses and
    that do not resolve yet (no mapping, no same-named QuickBooks record or vendor e-mail, or no
    QuickBooks list to check against); ``expensify_lists_at`` is when ``map refresh`` fetched them.
    """

    names: tuple[NameUse, ...] = ()
    reports_checked: int = 0
    lists_cached: tuple[str, ...] = field(default=())
    not_used_yet: tuple[NameUse, ...] = ()
    expensify_lists_at: str | None = None

    @property
    def blocking(self) -> tuple[NameUse, ...]:
        """The names that block at least one report."""
        return tuple(n for n in self.names if n.blocks)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "reports_checked": self.reports_checked,
            "lists_cached": list(self.lists_cached),
            "blocking": len(self.blocking),
            "names": [n.as_dict() for n in self.names],
            "expensify_lists_at": self.expensify_lists_at,
            "not_used_yet": [n.as_dict() for n in self.not_used_yet],
        }


def _reports_not_seen_by_quickbooks(store: Store) -> list[str]:
    return reports_not_seen_by_quickbooks(store)


def check_mappings(store: Store, config: Config | QuickBooksConfig) -> MappingCheck:
    """Every category, tag and submitter that pulled, unposted reports use, resolved or explained;
    then the names of Expensify's lists that no such report uses and that still need a mapping.

    Blocking names come first, then by kind and name.
    """
    mappings = mappings_for(store, config)
    settings = settings_for(config)
    found: dict[tuple[MappingKind, str], NameUse] = {}
    report_ids = _reports_not_seen_by_quickbooks(store)
    for rid in report_ids:
        report = load_report(store, rid)
        needs_vendor = any(e.reimbursable and e.amount != 0 for e in report.expenses)
        if settings.non_reimbursable is NonReimbursablePolicy.EXCLUDE:
            report = replace(report, expenses=tuple(e for e in report.expenses if e.reimbursable))
        cards = ((settings.card_account, settings.card_vendor_fallback)
                 if settings.non_reimbursable is NonReimbursablePolicy.CREDIT_CARD else None)
        fields = (settings.class_report_field, settings.customer_report_field)
        for resolved in mappings.names_used(report, needs_vendor=needs_vendor, cards=cards, report_fields=fields):
            key = (resolved.kind, normalize_source(resolved.kind, resolved.source))
            known = found.get(key)
            reports = (known.reports if known else ()) + ((rid,) if not known or rid not in known.reports else ())
            found[key] = NameUse(resolved.kind, resolved.source, resolved.target, resolved.how,
                                 resolved.problem, resolved.fix, reports)
    names = sorted(found.values(), key=lambda n: (not n.blocks, n.kind.value, n.source.casefold()))
    used = set(found) | {(MappingKind.CATEGORY, source) for kind, source in found if kind is MappingKind.ITEM}
    return MappingCheck(tuple(names), len(report_ids), tuple(sorted(k.value for k in mappings.lists.cached)),
                        tuple(_not_used_yet(store, mappings, used)), lists_refreshed_at(store))


def _not_used_yet(store: Store, mappings: Mappings, used: set[tuple[MappingKind, str]]) -> Iterable[NameUse]:
    levels = {"class_tag_level": mappings.class_tag_level, "customer_tag_level": mappings.customer_tag_level}
    for name in enabled_list_names(store, **levels):
        if (name.kind, name.source) in used:
            continue
        resolved = mappings.category(name.source) if name.kind is MappingKind.CATEGORY else (
            mappings.resolve(name.kind, name.source))
        unchecked = resolved.how is How.SAME_NAME_UNCHECKED
        if resolved.target is not None and not unchecked:
            continue
        list_kind = TARGET_LIST[name.kind].value
        problem = resolved.problem or (
            f'{name.kind} "{name.source}" is unmapped, and with no QuickBooks {list_kind} list fetched yet'
            f" the same name would be used unchecked")
        placeholder = "VENDOR NAME" if name.kind is MappingKind.EMPLOYEE else f"{list_kind.upper()} FULL NAME"
        yield NameUse(name.kind, name.source, resolved.target, resolved.how, problem,
                      command("map", "set", name.kind.value, name.source, placeholder), (),
                      EXPENSIFY_LIST, name.policies)
