"""``mlconnector replay``: the safe retry of one report, after a person fixed what stopped it.

```
failed / blocked / queued ──► planned again with the current mappings
    plan unchanged: failed postings go back to queued (same posting, same plan)
    plan changed:   unsent postings are replaced by the new plan (queued, or blocked with the reason)
posted ──(--force only)──► in_doubt: the next Web Connector session asks QuickBooks by RefNumber first
sent / in_doubt, or changed in Expensify after posting ──► refused
```

Everything, the checks included, runs in one transaction, so a Web Connector session cannot pick a
posting up half-way through; every outcome writes a ``replayed`` audit row with the state changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mlconnector.config import Config, QuickBooksConfig
from mlconnector.errors import NotFoundError, RefusedError
from mlconnector.models import Plan, PostingMode, PostingState
from mlconnector.plan import plan_report
from mlconnector.services.queue import (
    PlanSummary,
    block_reason,
    mappings_for,
    plan_and_queue,
    settings_for,
)
from mlconnector.store import Store, skips
from mlconnector.store.audit import AuditEvent
from mlconnector.store.payments import reset_unsent_payment
from mlconnector.store.postings import (
    PostingRecord,
    delete_unsent_postings,
    posting_to_json,
    postings_for_report,
    transition,
)
from mlconnector.store.reports import (
    changed_after_posting_flag,
    load_report,
    seen_by_quickbooks,
)

S = PostingState


class ReplayOutcome(StrEnum):
    """What a replay left the report as."""

    QUEUED = "queued"  # postings are queued for the next Web Connector session
    ALREADY_QUEUED = "already_queued"  # it was queued with this very plan; nothing changed
    BLOCKED = "blocked"  # still blocked; ``reasons`` says why and how to fix it
    NOTHING_TO_POST = "nothing_to_post"  # planned to nothing (e.g. only company-card expenses, left out)
    RECHECK = "recheck"  # --force: posted postings are in doubt; QuickBooks is asked before any write


@dataclass(frozen=True)
class ReplayResult:
    """What ``replay_report`` did to one report."""

    report_id: str
    outcome: ReplayOutcome
    queued: int = 0
    replanned: bool = False
    rechecked: tuple[tuple[str, str], ...] = ()  # (RefNumber, TxnID) of each posting now in doubt
    reasons: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "report_id": self.report_id, "outcome": self.outcome.value, "queued": self.queued,
            "replanned": self.replanned, "reasons": list(self.reasons),
            "rechecked": [{"ref_number": ref, "txn_id": txn} for ref, txn in self.rechecked],
        }


def replay_report(
    store: Store,
    config: Config | QuickBooksConfig,
    report_id: str,
    *,
    force: bool = False,
    today: dt.date,
    actor: str,
) -> ReplayResult:
    """Plan a failed or blocked report again with the current mappings and queue it.

    With ``force``, a posted report's postings go to ``in_doubt`` so that the next Web Connector
    session looks each one up in QuickBooks by RefNumber and writes it only if it is absent.

    Raises:
        NotFoundError: no such report in the state file.
        RefusedError: the report is posted (without ``force``), being posted, or changed after posting.
    """
    with store.atomic():
        _check_replayable(store, report_id)
        records = postings_for_report(store, report_id)
        in_flight = [r for r in records if r.state in (S.SENT, S.IN_DOUBT)]
        if in_flight:
            raise RefusedError(
                f"report {report_id} is being posted ({_parts(in_flight)}); the next Web Connector session"
                " checks QuickBooks first",
                hint=f"wait for that session, then see mlconnector audit --report {report_id}",
            )
        posted = [r for r in records if r.state is S.POSTED]
        # A bill payment waiting on its bills (blocked) goes back to the queue like a failed one: it is checked
        # against QuickBooks again before it is written.
        failed = [r for r in records if r.state is S.FAILED
                  or (r.state is S.BLOCKED and r.mode is PostingMode.BILL_PAYMENT)]
        if posted and failed and not force:
            # Some parts are in QuickBooks and some were refused: the refused ones go again as planned
            # (the split cannot change now); the posted ones are left alone.
            for record in failed:
                _requeue_failed(store, record, actor, "queued again as planned (other parts are in QuickBooks)")
            return ReplayResult(report_id, ReplayOutcome.QUEUED, queued=len(failed))
        if posted and not force:
            raise RefusedError(
                f"report {report_id} is already in QuickBooks (TxnID {', '.join(str(r.txn_id) for r in posted)})",
                hint="pass --force to have the next Web Connector session look it up by RefNumber"
                f" {posted[0].ref_number} and post it only if QuickBooks no longer has it",
            )
        if posted:
            return _recheck(store, report_id, records, actor)
        return _replan(store, config, report_id, records, today=today, actor=actor)


def _check_replayable(store: Store, report_id: str) -> None:
    changed = changed_after_posting_flag(store, report_id)
    if changed is None:
        raise NotFoundError(
            f"report {report_id} is not in the state file",
            hint=f"check the ID with mlconnector status, or pull it with mlconnector pull --report {report_id}",
        )
    if changed and not seen_by_quickbooks(store, report_id):
        # The flag came from a look while a posting was out; nothing of it is in QuickBooks now, so the
        # edited version can simply be pulled (which re-plans it).
        raise RefusedError(
            f"report {report_id} was edited in Expensify while it was being posted; the stored copy is out of date",
            hint=f"fetch the edited version with mlconnector pull --report {report_id}; it is planned again",
        )
    if changed:
        # Its postings carry the report as it was; posting them again (or a new plan) could only
        # put a second, different transaction next to the one QuickBooks has.
        raise RefusedError(
            f"report {report_id} was changed in Expensify after QuickBooks got it, so it is never posted again"
            " automatically",
            hint=f"compare the totals with mlconnector audit --report {report_id} and correct the QuickBooks"
            " transaction by hand",
        )


def _parts(records: list[PostingRecord]) -> str:
    return ", ".join(f"part {r.part}/{r.part_count} {r.state.value}" for r in records)


def _recheck(store: Store, report_id: str, records: list[PostingRecord], actor: str) -> ReplayResult:
    rechecked: list[tuple[str, str]] = []
    requeued = 0
    if any(r.state is S.POSTED and r.mode is PostingMode.BILL for r in records):
        # A bill may come back with another TxnID: a payment not sent yet would name the old one.
        dropped = reset_unsent_payment(store, report_id)
        if dropped:
            store.audit.append(AuditEvent.REPLAYED, actor=actor, report_id=report_id, detail={
                "what": "the bill payment not sent yet is planned again once the bills are checked",
                "unsent_postings_dropped": dropped})
        records = [r for r in records if not (r.mode is PostingMode.BILL_PAYMENT and r.state in (S.QUEUED, S.BLOCKED))]
    for record in records:
        if record.state is S.POSTED:
            # The message-set and request IDs belong to the old send; without them the next
            # session cannot mistake this for an answer it is still waiting for, and goes
            # straight to the query by RefNumber.
            transition(
                store, record.id, S.IN_DOUBT, actor=actor, expect=S.POSTED, event=AuditEvent.REPLAYED,
                message_set_id=None, request_id=None,
                detail={"what": f"replay --force: QuickBooks is asked for RefNumber {record.ref_number} first;"
                                " posted again only if it is absent"},
            )
            rechecked.append((record.ref_number, str(record.txn_id)))
        elif record.state is S.FAILED:
            # Other parts of this report are in QuickBooks, so its split cannot change: the failed
            # part is sent again as planned (QuickBooks refused it, so it cannot be there twice).
            _requeue_failed(store, record, actor, "queued again as planned (other parts are in QuickBooks)")
            requeued += 1
    return ReplayResult(report_id, ReplayOutcome.RECHECK, queued=requeued, rechecked=tuple(rechecked))


def _requeue_failed(store: Store, record: PostingRecord, actor: str, what: str) -> None:
    previous = (f"QuickBooks {record.qb_status_code}: {record.qb_status_message}"
                if record.qb_status_code is not None else record.reason or "")
    transition(
        store, record.id, S.QUEUED, actor=actor, expect=record.state, event=AuditEvent.REPLAYED,
        reason=None, qb_status_code=None, qb_status_message=None, request_id=None, message_set_id=None,
        detail={"what": what, "previous_failure": previous},
    )


def _replan(
    store: Store, config: Config | QuickBooksConfig, report_id: str, records: list[PostingRecord], *,
    today: dt.date, actor: str,
) -> ReplayResult:
    plan = plan_report(load_report(store, report_id), mappings_for(store, config), settings_for(config),
                       posting_day=today)
    if records and _same_plan(records, plan):
        return _replay_unchanged(store, report_id, records, plan, actor)
    dropped = delete_unsent_postings(store, report_id)
    # A report planned to nothing is remembered so pulls do not re-plan it; replay is asked to.
    skips.clear_skip(store, report_id)
    store.audit.append(
        AuditEvent.REPLAYED, actor=actor, report_id=report_id,
        detail={"what": "planned again with the current mappings", "unsent_postings_dropped": dropped,
                "was": sorted({r.state.value for r in records})},
    )
    summary = plan_and_queue(store, config, [report_id], today=today, actor=actor)
    return _from_summary(report_id, summary)


def _same_plan(records: list[PostingRecord], plan: Plan) -> bool:
    if plan.blocked:
        return (len(records) == 1 and records[0].state is S.BLOCKED and records[0].posting is None
                and records[0].reason == block_reason(plan.blocked))
    return bool(plan.postings) and len(records) == len(plan.postings) and all(
        r.state in (S.QUEUED, S.FAILED) and r.posting is not None
        and posting_to_json(r.posting) == posting_to_json(p)
        for r, p in zip(records, plan.postings)
    )


def _replay_unchanged(
    store: Store, report_id: str, records: list[PostingRecord], plan: Plan, actor: str
) -> ReplayResult:
    if plan.blocked:
        reasons = tuple(str(b) for b in plan.blocked)
        store.audit.append(AuditEvent.REPLAYED, actor=actor, report_id=report_id,
                           detail={"what": "still blocked; nothing changed", "reason": block_reason(plan.blocked)})
        return ReplayResult(report_id, ReplayOutcome.BLOCKED, reasons=reasons)
    failed = [r for r in records if r.state is S.FAILED]
    for record in failed:
        _requeue_failed(store, record, actor, "queued again with the same plan")
    if not failed:
        store.audit.append(AuditEvent.REPLAYED, actor=actor, report_id=report_id,
                           detail={"what": "already queued with the same plan; nothing changed"})
        return ReplayResult(report_id, ReplayOutcome.ALREADY_QUEUED)
    return ReplayResult(report_id, ReplayOutcome.QUEUED, queued=len(failed))


def _from_summary(report_id: str, summary: PlanSummary) -> ReplayResult:
    if summary.postings_queued:
        return ReplayResult(report_id, ReplayOutcome.QUEUED, queued=summary.postings_queued, replanned=True)
    if summary.blocked:
        return ReplayResult(report_id, ReplayOutcome.BLOCKED, replanned=True,
                            reasons=tuple(str(b) for b in summary.blocked))
    return ReplayResult(report_id, ReplayOutcome.NOTHING_TO_POST, replanned=True,
                        reasons=tuple(n.reason for n in summary.notes[-1:]))
