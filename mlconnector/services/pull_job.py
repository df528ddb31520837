"""One whole `mlconnector pull`, as `pull` and `serve`'s schedule both run it: under the pull lock, export and
store, refresh the Expensify lists when a day old, plan, queue bill payments, then tell a person what newly
needs them. Nothing here prints: the caller renders the result."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlconnector.config import Config
from mlconnector.errors import ExpensifyError, MlConnectorError
from mlconnector.expensify.client import ExpensifyClient
from mlconnector.services.pull import Progress, PullSummary, pull_reports, waiting_for_a_person
from mlconnector.services.queue import PlanSummary
from mlconnector.store import Store

log = logging.getLogger("mlconnector.services.pull_job")


@dataclass
class PullJob:
    """What one pull did: the export summary, the plan, the payments queued, the lists refresh, what waits."""

    summary: PullSummary
    plan: PlanSummary | None = None
    payments_queued: list[str] = field(default_factory=list)
    lists: dict[str, Any] | None = None
    waiting: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``pull --json`` (keys are only ever added)."""
        data = self.summary.as_dict()
        if self.plan is not None:
            data["plan"] = self.plan.as_dict()
            data["payments_queued"] = self.payments_queued
            data["expensify_lists"] = self.lists
        data["waiting"] = self.waiting
        return data


def run_pull_job(
    store: Store, client: ExpensifyClient, config: Config, lock_file: Path, *, today: dt.date,
    since: dt.date | None = None, until: dt.date | None = None, report_ids: Sequence[str] = (),
    dry_run: bool = False, progress: Progress | None = None, lock_timeout: float = 0, actor: str = "pull",
) -> PullJob:
    """Run one pull under the lock (``lock_timeout`` seconds to wait for another one), then send alerts.

    Raises:
        LockedError: another pull holds the lock.
        ExpensifyError, ConfigError, UserError, StoreError: as :func:`pull_reports`; alerts were still sent.
    """
    from mlconnector.services.locking import exclusive

    try:
        with exclusive(lock_file, timeout=lock_timeout):
            summary = pull_reports(store, client, config, since=since, until=until, report_ids=tuple(report_ids),
                                   dry_run=dry_run, progress=progress)
            job = PullJob(summary)
            if not dry_run:
                job.lists = _refresh_lists(store, client, config)
                # Planning happens under the same lock, so two runs never plan the same report twice.
                from mlconnector.services.payments import queue_payments
                from mlconnector.services.queue import plan_and_queue

                job.plan = plan_and_queue(store, config, today=today, actor=actor)
                job.payments_queued = queue_payments(store, config, today=today, actor=actor)
            job.waiting = waiting_for_a_person(store)
    except MlConnectorError:
        if not dry_run:
            send_pull_alerts(store, config)  # Expensify failing on consecutive runs is itself worth telling
        raise
    if not dry_run:
        send_pull_alerts(store, config)
    return job


def send_pull_alerts(store: Store, config: Config) -> None:
    """Tell a person what newly needs them ([notify]); never raises."""
    from mlconnector.services.notify import send_alerts

    send_alerts(store, config, now=dt.datetime.now(dt.timezone.utc), trigger="pull")


def _refresh_lists(store: Store, client: ExpensifyClient, config: Config) -> dict[str, Any]:
    """Expensify's categories, tags and employees fetched again when a day old (what `map check` compares);
    a failure here is reported and leaves the pull's own result alone."""
    from mlconnector.services.lists import refresh_if_stale

    try:
        refreshed = refresh_if_stale(store, client, config)
    except ExpensifyError as exc:
        log.warning("the Expensify lists could not be refreshed: %s", exc)
        return {"refreshed": False, "error": str(exc)}
    return {"refreshed": refreshed is not None, "error": None}
