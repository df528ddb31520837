"""Stamping reports QuickBooks has in full as exported in Expensify, and what still waits for a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlconnector.errors import (
    ExpensifyValidationError,
)
from mlconnector.expensify import jobs
from mlconnector.expensify.client import ExpensifyClient
from mlconnector.expensify.template import stamp_template
from mlconnector.models import PostingState
from mlconnector.store import Store, dashboard, pulls
from mlconnector.store.audit import AuditEvent

if TYPE_CHECKING:
    from mlconnector.services.pull import Progress, PullSummary

ACTOR = "pull"
STAMP_BATCH = 200  # report IDs per stamping export job


# ------------------------------------------------------------------------------ waiting work

WAITING_STATES = (PostingState.BLOCKED, PostingState.FAILED)
WAITING_HINT = "mlconnector status lists each one with the reason and the fix"


def waiting_for_a_person(store: Store) -> dict[str, Any]:
    """What waits for a person in the whole state file, not only in this pull: blocked and failed postings.

    ``reports`` counts each report once, ``postings`` is ``blocked + failed``; ``hint`` points at
    ``mlconnector status``. A scheduled pull exits 4 while ``postings`` is not 0.
    """
    states = tuple(s.value for s in WAITING_STATES)
    per_state = dashboard.postings_per_state(store, states)
    return {
        "reports": dashboard.reports_in_states(store, states), "postings": sum(per_state.values()),
        "blocked": per_state[PostingState.BLOCKED.value], "failed": per_state[PostingState.FAILED.value],
        "hint": WAITING_HINT,
    }


# ------------------------------------------------------------------------------ stamping


def reports_to_stamp(store: Store) -> list[str]:
    """Reports QuickBooks has accepted in full (every posting ``posted``) and not stamped yet."""
    return pulls.posted_not_stamped(store)


def stamp_posted(store: Store, client: ExpensifyClient, label: str, summary: PullSummary,
                  progress: Progress) -> None:
    pending = reports_to_stamp(store)
    for start in range(0, len(pending), STAMP_BATCH):
        batch = pending[start:start + STAMP_BATCH]
        progress("stamp", start, len(pending))
        try:
            file_name = client.export(jobs.stamp_job(batch, label), stamp_template())
        except ExpensifyValidationError as exc:
            # A refused stamp must not block pulling; the reports stay unstamped and are retried.
            summary.stamp_error = exc.message
            with store.atomic():
                store.audit.append(AuditEvent.WARNING, actor=ACTOR,
                                   detail={"what": "stamping reports as exported failed", "error": exc.message,
                                           "reports": batch})
            return
        now = store.timestamp()
        with store.atomic():
            pulls.mark_stamped(store, batch, now)
            for report_id in batch:
                store.audit.append(AuditEvent.STAMPED_EXPORTED, actor=ACTOR, report_id=report_id,
                                   detail={"label": label, "file": file_name})
        summary.stamped.extend(batch)
    if pending:
        progress("stamp", len(pending), len(pending))
