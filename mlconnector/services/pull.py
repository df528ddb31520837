"""``mlconnector pull`` as a service: stamp what QuickBooks accepted, export, download, parse, store.

No printing here: progress goes to an optional callback and the result is a :class:`PullSummary`.

Order of a pull, and why:

1. Stamp reports whose postings are all ``posted`` and that were not stamped yet, with the
   configured label (a small export job on ``reportIDList`` with ``markAsExported``). Stamping is
   the only write to Expensify and it cannot be undone, so it happens only for reports QuickBooks
   has accepted — never as part of the main export.
2. Export with ``markedAsExported = <label>`` (already-stamped reports are skipped server side) and
   no ``onFinish``; download the whole file to a temporary file (polling until it is ready) and
   check its trailer *before* storing anything, so a download that fails or never becomes ready
   leaves nothing half-stored.
3. Parse the file line by line (constant memory) and store each report in its own transaction
   through ``reports.save_report``, which owns the new/unchanged/changed rules and audit rows.

The run is recorded in the ``pulls`` table and the audit log. Planning is not done here: the
summary carries the IDs of reports stored new or changed, for the planner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from mlconnector.config import Config
from mlconnector.errors import (
    ExpensifyRetriableError,
    StoreError,
)
from mlconnector.expensify import jobs
from mlconnector.expensify.client import ExpensifyClient
from mlconnector.expensify.parse import InvalidReport, iter_export
from mlconnector.expensify.template import export_template
from mlconnector.models import Report
from mlconnector.redact import redact_text
from mlconnector.services.pull_summary import PullSummary
from mlconnector.services.pull_windows import (
    ExportWindow,
    export_windows,
    split_range,
)
from mlconnector.services.stamping import (
    WAITING_HINT,
    reports_to_stamp,
    stamp_posted,
    waiting_for_a_person,
)
from mlconnector.store import Store, pulls
from mlconnector.store.audit import AuditEvent
from mlconnector.store.payments import reimbursed_among, reports_to_watch
from mlconnector.store.reports import (
    SaveOutcome,
    save_report,
    seen_by_quickbooks,
    stored_fingerprint,
)

log = logging.getLogger("mlconnector.services.pull")

LAST_PULL_SETTING = pulls.LAST_PULL_SETTING  # defined beside the pulls table; callers import it from here too
INVALID_SETTING = "pull.invalid_reports"  # report ID -> reason, re-exported by ID on later pulls
MAX_RETRY = 500  # bounds the retry job; the oldest IDs are kept (sorted), the rest wait their turn
STAMP_BATCH = 200
STORE_BATCH = 200  # reports stored per transaction
# Posted reports read again per export job: ~13 characters each in reportIDList keeps the form small, and a
# few hundred reports make a file of a few MB. Jobs are paced by the client like every other request.
WATCH_BATCH = 500
ACTOR = "pull"

Progress = Callable[[str, int, "int | None"], None]
"""``progress(stage, completed, total)``; stages: stamp, export, wait (for Expensify's file of job N), download,
parse, store."""


def _no_progress(stage: str, completed: int, total: int | None) -> None:
    return None


def pull_reports(
    store: Store,
    client: ExpensifyClient,
    config: Config,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    report_ids: tuple[str, ...] | list[str] = (),
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PullSummary:
    """Pull approved and closed reports from Expensify into the state file.

    With ``dry_run`` the export runs with ``test: "true"``, reports are parsed and validated and
    compared with the state file, and nothing is stored or stamped.

    Raises:
        ExpensifyError: Expensify failed (the pull is recorded as failed; complete reports already
            stored stay stored, no report is ever half-stored).
        ConfigError, UserError: no start date, or a bad range.
        StoreError: the state file could not be written.
    """
    notify = progress or _no_progress
    settings = config.expensify
    summary = PullSummary(dry_run=dry_run)
    today = store.now().date()
    last = store.get_setting(LAST_PULL_SETTING)
    default_windows = not (since or until or report_ids)  # only these also retry earlier invalid reports
    if report_ids:
        summary.windows = [ExportWindow()]
    else:
        summary.windows = export_windows(
            since=since, until=until, last_day=dt.date.fromisoformat(last) if last else None,
            start_date=settings.start_date, today=today,
        )
    retry = _invalid_to_retry(store)  # always loaded: a pull by ID or date must not forget the list
    jobs_retry = tuple(retry) if default_windows else ()
    if not report_ids:
        summary.watched = _to_watch(store, config)
    if dry_run:
        _run_exports(store, client, config, summary, report_ids, notify, retry=jobs_retry)
        _not_found(summary, report_ids)
        return summary
    summary.pull_id = _start_run(store, summary, report_ids)
    try:
        if settings.mark_exported:
            stamp_posted(store, client, settings.export_label, summary, notify)
        _run_exports(store, client, config, summary, report_ids, notify, retry=jobs_retry)
        _not_found(summary, report_ids)
        _remember_invalid(store, summary, retry)
        summary.reimbursed = reimbursed_among(store, summary.watched)
    except BaseException as exc:
        _fail_run(store, summary, exc)
        log.info("pull %s failed: %s", summary.pull_id, redact_text(str(exc)))
        raise
    # A plain pull moves the start of the next one. A --since/--until pull does so only while no pull has
    # recorded one yet (a new install pulled by hand first): later, moving it past days the window did not
    # cover (and past reports approved since the last pull, which only a plain pull's approvedAfter job
    # finds) would lose reports.
    anchor = today if default_windows else (_covered_until(summary, today) if last is None else None)
    _finish_run(store, summary, anchor)
    log.info("pull %s finished (%s): %s", summary.pull_id, summary.result, summary.counts())
    return summary


# ------------------------------------------------------------------------------- the exports


def _not_found(summary: PullSummary, report_ids: tuple[str, ...] | list[str]) -> None:
    """The IDs asked for that no export returned (a typo, or a report outside report_states)."""
    returned = {*summary.new, *summary.unchanged, *summary.changed, *summary.changed_after_posting,
                *(i.report_id for i in summary.invalid)}
    summary.not_found = [rid for rid in dict.fromkeys(report_ids) if rid not in returned]


def _invalid_to_retry(store: Store) -> dict[str, str]:
    """Reports that were invalid in an earlier pull: re-exported by ID until they store.

    The scheduled pull's window moves on past them, so without this they would never come back.
    """
    try:
        data = json.loads(store.get_setting(INVALID_SETTING) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remember_invalid(store: Store, summary: PullSummary, retry: dict[str, str]) -> None:
    stored = {*summary.new, *summary.unchanged, *summary.changed, *summary.changed_after_posting}
    still = {rid: reason for rid, reason in retry.items() if rid not in stored}
    still.update({i.report_id: i.reason for i in summary.invalid if i.report_id})
    with store.atomic():
        store.set_setting(INVALID_SETTING, json.dumps(dict(sorted(still.items())[:MAX_RETRY]), sort_keys=True))


def _jobs(config: Config, summary: PullSummary, report_ids: tuple[str, ...] | list[str],
          retry: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    e = config.expensify
    common: dict[str, Any] = {
        "report_states": e.report_states, "policy_ids": e.policy_ids, "not_marked_as": e.export_label,
        "test": summary.dry_run,
    }
    if report_ids:
        # Asked for by ID: export them even if stamped already, so a user can re-check one.
        yield jobs.export_job(report_ids=tuple(report_ids), report_states=e.report_states, test=summary.dry_run)
        return
    for w in summary.windows:
        yield jobs.export_job(start_date=w.start, end_date=w.end, approved_after=w.approved_after, **common)
    if retry:
        yield jobs.export_job(report_ids=retry, report_states=e.report_states, test=summary.dry_run)
    # Posted reports, stamped or not, read again by ID; Reimbursed always asked for, since that is what
    # a bill payment waits for.
    states = tuple(dict.fromkeys((*e.report_states, "REIMBURSED")))
    for start in range(0, len(summary.watched), WATCH_BATCH):
        yield jobs.export_job(report_ids=tuple(summary.watched[start:start + WATCH_BATCH]), report_states=states,
                              test=summary.dry_run)


def _to_watch(store: Store, config: Config) -> list[str]:
    """Reports posted in the last ``expensify.watch_days`` that Expensify has not shown reimbursed yet."""
    days = config.expensify.watch_days
    if not days:
        return []
    since = (store.now() - dt.timedelta(days=days)).isoformat(timespec="milliseconds")
    return reports_to_watch(store, since)


def _run_exports(store: Store, client: ExpensifyClient, config: Config, summary: PullSummary,
                 report_ids: tuple[str, ...] | list[str], progress: Progress, *, retry: tuple[str, ...] = ()) -> None:
    all_jobs = list(_jobs(config, summary, report_ids, retry))
    seen: set[str] = set()
    for n, job in enumerate(all_jobs, 1):
        progress("export", n - 1, len(all_jobs))
        file_name = client.export(job, export_template(
            [f for f in (config.quickbooks.class_report_field, config.quickbooks.customer_report_field) if f]))
        # Expensify prepares the file after the job is accepted: the job counts as done only once its file is in.
        progress("wait", n, len(all_jobs))
        with tempfile.TemporaryFile(prefix="mlconnector-export-") as tmp:
            received = 0

            def on_bytes(size: int) -> None:
                nonlocal received
                received += size
                progress("download", received, None)

            client.download(file_name, tmp, on_bytes=on_bytes)
            total = _check_complete(tmp, file_name)
            progress("export", n, len(all_jobs))
            tmp.seek(0)
            _store_all(store, tmp, total, summary, seen, progress)


def _check_complete(tmp: IO[bytes], file_name: str) -> int:
    """The number of reports in a downloaded export, after checking its trailer; nothing is stored yet.

    Raises:
        ExpensifyRetriableError: the file is truncated (no trailer, or a count that does not match).
    """
    tmp.seek(0)
    lines = 0
    last = b""
    for line in tmp:
        if line.strip():
            lines += 1
            last = line
    try:
        trailer = json.loads(last) if last else None
    except ValueError:
        trailer = None
    if not (isinstance(trailer, dict) and trailer.get("end") is True and trailer.get("reports") == lines - 1):
        raise ExpensifyRetriableError(f"the export file {file_name} is incomplete (no matching trailer line)",
                                      hint="run mlconnector pull again")
    return lines - 1


def _store_all(store: Store, tmp: IO[bytes], total: int, summary: PullSummary, seen: set[str],
               progress: Progress) -> None:
    done = 0
    items = iter_export(tmp)
    while batch := list(itertools.islice(items, STORE_BATCH)):
        # One commit per batch, one savepoint per report (save_report's own): a report is stored whole or not
        # at all; when the pull stops part-way (an error, Ctrl-C), the reports completed so far are kept, and a
        # process killed outright loses at most the batch, which the next pull exports again (the window moves
        # on only when a pull finishes).
        with contextlib.nullcontext() if summary.dry_run else store.atomic(keep_done=True):
            for item in batch:
                done += 1
                progress("parse", done, total)
                if item.report_id and item.report_id in seen:
                    continue  # the same report from a second, overlapping job of this pull
                seen.add(item.report_id)
                if isinstance(item, InvalidReport):
                    summary.invalid.append(item)
                    if not summary.dry_run:
                        with store.atomic():
                            store.audit.append(AuditEvent.INVALID, actor=ACTOR, report_id=item.report_id or None,
                                               detail={"reason": item.reason})
                elif summary.dry_run:
                    summary._record(_preview(store, item), item.report_id)
                    summary.previewed.append(item)
                else:
                    summary._record(save_report(store, item, actor=ACTOR), item.report_id)
                progress("store", done, total)


def _preview(store: Store, report: Report) -> SaveOutcome:
    """What ``save_report`` would do, read-only (for ``--dry-run``)."""
    stored = stored_fingerprint(store, report.report_id)
    if stored is None:
        return SaveOutcome.NEW
    if stored == report.fingerprint():
        return SaveOutcome.UNCHANGED
    return SaveOutcome.CHANGED_AFTER_POSTING if seen_by_quickbooks(store, report.report_id) else SaveOutcome.CHANGED


# --------------------------------------------------------------------------- run bookkeeping


def _start_run(store: Store, summary: PullSummary, report_ids: tuple[str, ...] | list[str]) -> int:
    detail = {"windows": [w.as_dict() for w in summary.windows], "reports": list(report_ids)}
    with store.atomic():
        pull_id = pulls.start_pull(store)
        store.audit.append(AuditEvent.PULL_STARTED, actor=ACTOR, detail={"pull_id": pull_id, **detail})
    return pull_id


def _covered_until(summary: PullSummary, today: dt.date) -> dt.date | None:
    """The last day this pull exported through (None for a pull by report ID, which covers no window)."""
    ends = [w.end or today for w in summary.windows if w.start or w.end or w.approved_after]
    return max(ends) if ends else None


def _finish_run(store: Store, summary: PullSummary, anchor: dt.date | None) -> None:
    counts = summary.counts()
    with store.atomic():
        pulls.finish_pull(store, summary.pull_id, summary.result, json.dumps(summary.as_dict(), sort_keys=True))
        last = store.get_setting(LAST_PULL_SETTING)
        if anchor is not None and (last is None or anchor.isoformat() > last):
            store.set_setting(LAST_PULL_SETTING, anchor.isoformat())
        store.audit.append(AuditEvent.PULL_FINISHED, actor=ACTOR,
                           detail={"pull_id": summary.pull_id, "result": summary.result, **counts})


def _fail_run(store: Store, summary: PullSummary, exc: BaseException) -> None:
    if isinstance(exc, KeyboardInterrupt):
        error = "interrupted (Ctrl-C); every report stored before it is complete, none is half-stored"
    else:
        error = redact_text(f"{type(exc).__name__}: {exc}")[:500]
    try:
        with store.atomic():
            pulls.finish_pull(store, summary.pull_id, "failed", json.dumps(summary.as_dict(), sort_keys=True),
                              error)
            store.audit.append(AuditEvent.PULL_FAILED, actor=ACTOR,
                               detail={"pull_id": summary.pull_id, "error": error, **summary.counts()})
    except StoreError:
        log.exception("could not record the failed pull %s", summary.pull_id)


# What waits for a person is reported by every pull; it lives with the stamping, which reads the same state.
__all__ = ["LAST_PULL_SETTING", "WAITING_HINT", "ExportWindow", "Progress", "PullSummary", "export_windows",
           "pull_reports", "reports_to_stamp", "split_range", "waiting_for_a_person"]
