"""End-to-end pulls over loopback HTTP against the Expensify simulator, with time made fast."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from mlconnector.errors import (
    ConfigError,
    ExpensifyAuthError,
    ExpensifyError,
    ExpensifyRetriableError,
    ExpensifyValidationError,
    StoreError,
)
from mlconnector.expensify.client import RateLimiter
from mlconnector.models import PostingState
from mlconnector.sandbox.expensify import ExpensifySimulator, SimReport, demo_reports
from mlconnector.services.pull import (
    LAST_PULL_SETTING,
    ExportWindow,
    PullSummary,
    export_windows,
    pull_reports,
    split_range,
)
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import add_posting, transition
from mlconnector.store.reports import load_report
from tests import factories
from tests.sim_helpers import FakeClock, make_client, make_config

TODAY = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db() -> Iterator[Store]:
    store = Store.memory(now=lambda: TODAY)
    yield store
    store.close()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[ExpensifySimulator]:
    reports: list[Any] = list(demo_reports(6, 4))
    reports.append(SimReport({**demo_reports(7, 2, seed=99)[6], "reportID": "R-OPEN"}, state="OPEN"))
    with ExpensifySimulator(reports, clock=clock, not_ready_polls=2) as s:
        yield s


def _pull(db: Store, sim: ExpensifySimulator, clock: FakeClock, *, config_overrides: dict[str, Any] | None = None,
          client_overrides: dict[str, Any] | None = None, **kwargs: Any) -> PullSummary:
    config = make_config(sim, **(config_overrides or {}))
    with make_client(sim, clock, **(client_overrides or {})) as client:
        return pull_reports(db, client, config, **kwargs)


def _approved_ids(sim: ExpensifySimulator) -> list[str]:
    return sorted(r.report_id for r in sim.reports.values() if r.state == "APPROVED")


def _jobs(sim: ExpensifySimulator, job_type: str = "file") -> list[dict[str, Any]]:
    return [json.loads(r.form["requestJobDescription"]) for r in sim.requests if r.job_type == job_type]


def _count(db: Store, table: str) -> int:
    return int(db.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _events(db: Store, event: AuditEvent) -> list[Any]:
    return db.audit.rows(event=event.value)


def test_a_normal_pull_stores_every_approved_report_and_touches_nothing_in_expensify(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    summary = _pull(db, sim, clock)
    assert sorted(summary.new) == _approved_ids(sim) and len(summary.new) == 6
    assert summary.unchanged == [] and summary.changed == [] and summary.invalid == []
    assert summary.stored_report_ids == summary.new
    some = sim.reports[summary.new[0]].data
    stored = load_report(db, some["reportID"])
    assert stored.total == Decimal(some["total"]) / 100
    assert [e.transaction_id for e in stored.expenses] == [e["transactionID"] for e in some["transactionList"]]
    assert _count(db, "expenses") == 6 * 4
    (job,) = _jobs(sim)
    assert "onFinish" not in job and job["inputSettings"]["reportState"] == "APPROVED,REIMBURSED,ARCHIVED"
    assert job["inputSettings"]["filters"] == {
        "startDate": "2026-01-01", "endDate": "2026-11-24", "markedAsExported": "ml-connector"}
    assert all(not r.labels for r in sim.reports.values())  # never stamped at download time
    assert db.conn.execute("SELECT result, error FROM pulls").fetchall() == [("ok", None)]
    assert db.get_setting(LAST_PULL_SETTING) == "2026-11-24"
    assert len(_events(db, AuditEvent.PULLED)) == 6 and len(_events(db, AuditEvent.PULL_FINISHED)) == 1


def test_a_second_pull_finds_nothing_new_and_duplicates_nothing(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    _pull(db, sim, clock)
    before = (_count(db, "reports"), _count(db, "expenses"), len(_events(db, AuditEvent.PULLED)))
    summary = _pull(db, sim, clock)
    assert summary.new == summary.changed == []
    second = [j["inputSettings"]["filters"] for j in _jobs(sim)[1:]]
    assert second == [
        {"approvedAfter": "2026-11-23", "markedAsExported": "ml-connector"},
        {"startDate": "2026-11-23", "endDate": "2026-11-24", "markedAsExported": "ml-connector"},
    ]
    again = _pull(db, sim, clock, since=dt.date(2026, 1, 1))  # the whole range once more
    assert again.new == [] and sorted(again.unchanged) == _approved_ids(sim)
    assert (_count(db, "reports"), _count(db, "expenses"), len(_events(db, AuditEvent.PULLED))) == before


def test_a_report_approved_long_after_it_was_created_is_found_by_the_incremental_pull(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    _pull(db, sim, clock)
    late = demo_reports(1, 2, seed=5)[0]
    late.update(reportID="R-LATE", created="2026-02-01 09:00:00", submitted="2026-02-01 10:00:00",
                approved="2026-11-24 08:00:00")
    sim.add_report(late)
    assert _pull(db, sim, clock).new == ["R-LATE"]


def test_a_report_edited_before_posting_is_updated_and_flagged_for_planning(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    first = _pull(db, sim, clock)
    target = first.new[0]

    def edit(data: dict[str, Any]) -> None:
        # Editing an approved report means unapproving it; the new approval date brings it back.
        data["transactionList"][0]["modifiedAmount"] = 4242
        data["total"] += 1
        data["approved"] = "2026-11-24 07:00:00"

    sim.edit_report(target, edit)
    summary = _pull(db, sim, clock)
    assert summary.changed == [target] and summary.stored_report_ids == [target]
    assert load_report(db, target).expenses[0].amount == Decimal("42.42")
    (row,) = _events(db, AuditEvent.CHANGED)
    assert row.report_id == target


def test_a_report_edited_after_posting_is_flagged_and_kept_as_posted(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    target = _pull(db, sim, clock, config_overrides={"mark_exported": False}).new[0]
    _post(db, target)
    sim.edit_report(target, lambda d: d.update(reportName="renamed"))
    summary = _pull(db, sim, clock, config_overrides={"mark_exported": False}, since=dt.date(2026, 1, 1))
    assert summary.changed_after_posting == [target] and target not in summary.stored_report_ids
    assert load_report(db, target).name != "renamed"
    assert [r.report_id for r in _events(db, AuditEvent.CHANGED_AFTER_POSTING)] == [target]


def _post(db: Store, report_id: str) -> None:
    report = load_report(db, report_id)
    posting_id = add_posting(db, factories.bill(report_id), state=PostingState.QUEUED,
                             report_fingerprint=report.fingerprint(), actor="test")
    transition(db, posting_id, PostingState.SENT, actor="test")
    transition(db, posting_id, PostingState.POSTED, actor="test", txn_id="TX-1")


def test_reports_quickbooks_accepted_are_stamped_at_the_start_of_the_next_pull(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    first = _pull(db, sim, clock)
    posted, queued = first.new[0], first.new[1]
    _post(db, posted)
    add_posting(db, factories.bill(queued), state=PostingState.QUEUED,
                report_fingerprint=load_report(db, queued).fingerprint(), actor="test")
    summary = _pull(db, sim, clock)
    assert summary.stamped == [posted]
    assert sim.labels(posted) == {"ml-connector"} and sim.labels(queued) == set()
    stamp_job = _jobs(sim)[1]
    assert stamp_job["inputSettings"]["filters"] == {"reportIDList": posted}
    assert stamp_job["onFinish"] == [{"actionName": "markAsExported", "label": "ml-connector"}]
    # The label keeps it out of the date exports; it comes back only through the watch job, by ID.
    windows = [j for j in _jobs(sim)[2:] if "reportIDList" not in j["inputSettings"]["filters"]]
    assert windows and all(j["inputSettings"]["filters"]["markedAsExported"] == "ml-connector" for j in windows)
    assert summary.watched == [posted] and posted in summary.unchanged
    assert db.conn.execute("SELECT exported_stamped_at FROM reports WHERE report_id = ?", (posted,)).fetchone()[0]
    assert [r.report_id for r in _events(db, AuditEvent.STAMPED_EXPORTED)] == [posted]
    assert _pull(db, sim, clock).stamped == []  # stamped once only


def test_mark_exported_false_never_stamps(db: Store, sim: ExpensifySimulator, clock: FakeClock) -> None:
    posted = _pull(db, sim, clock).new[0]
    _post(db, posted)
    summary = _pull(db, sim, clock, config_overrides={"mark_exported": False})
    assert summary.stamped == [] and all(not r.labels for r in sim.reports.values())
    assert all("onFinish" not in job for job in _jobs(sim))


def test_a_dry_run_exports_in_test_mode_and_stores_nothing(db: Store, sim: ExpensifySimulator, clock: FakeClock) -> None:
    summary = _pull(db, sim, clock, dry_run=True)
    assert sorted(summary.new) == _approved_ids(sim) and summary.dry_run
    assert _count(db, "reports") == _count(db, "pulls") == _count(db, "audit") == 0
    assert _jobs(sim)[0]["test"] == "true"
    assert db.get_setting(LAST_PULL_SETTING) is None


def test_invalid_reports_are_listed_with_their_reason_and_the_rest_is_stored(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    bad = _approved_ids(sim)[0]
    sim.edit_report(bad, lambda d: d["transactionList"][1].update(created="31/12/2026"))
    summary = _pull(db, sim, clock)
    assert [i.report_id for i in summary.invalid] == [bad] and "date is not a date" in summary.invalid[0].reason
    assert summary.result == "partial" and len(summary.new) == 5
    assert db.conn.execute("SELECT 1 FROM reports WHERE report_id = ?", (bad,)).fetchone() is None
    assert [r.report_id for r in _events(db, AuditEvent.INVALID)] == [bad]
    assert db.conn.execute("SELECT result FROM pulls").fetchone()[0] == "partial"


def test_an_invalid_report_is_exported_again_by_id_on_later_pulls_until_it_stores(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    bad = _approved_ids(sim)[0]
    sim.edit_report(bad, lambda d: d["transactionList"][1].update(created="31/12/2026"))
    assert [i.report_id for i in _pull(db, sim, clock).invalid] == [bad]
    again = _pull(db, sim, clock)
    assert [i.report_id for i in again.invalid] == [bad]  # still asked for, still invalid
    assert {"reportIDList": bad} in [j["inputSettings"]["filters"] for j in _jobs(sim)]
    sim.edit_report(bad, lambda d: d["transactionList"][1].update(created="2026-12-31"))  # fixed in Expensify
    fixed = _pull(db, sim, clock)
    assert bad in fixed.new and fixed.invalid == []
    assert json.loads(db.get_setting("pull.invalid_reports") or "{}") == {}


def test_a_pull_by_id_keeps_the_invalid_reports_to_retry(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    bad, other = _approved_ids(sim)[:2]
    sim.edit_report(bad, lambda d: d["transactionList"][1].update(created="31/12/2026"))
    _pull(db, sim, clock)
    _pull(db, sim, clock, report_ids=[other])
    assert list(json.loads(db.get_setting("pull.invalid_reports") or "{}")) == [bad]


def test_report_ids_are_exported_by_id(db: Store, sim: ExpensifySimulator, clock: FakeClock) -> None:
    wanted = _approved_ids(sim)[:2]
    summary = _pull(db, sim, clock, report_ids=wanted)
    assert sorted(summary.new) == wanted
    assert _jobs(sim)[0]["inputSettings"]["filters"] == {"reportIDList": ",".join(wanted)}
    assert db.get_setting(LAST_PULL_SETTING) is None  # a pull by ID does not move the incremental anchor


# --------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("kind", "error", "text"),
    [
        ("auth", ExpensifyAuthError, "Authentication error"),
        ("validation", ExpensifyValidationError, "(410): Malformed date"),
        ("html", ExpensifyError, "HTML error page"),
    ],
)
def test_a_fatal_expensify_error_fails_the_pull_and_is_recorded(
    db: Store, sim: ExpensifySimulator, clock: FakeClock, kind: str, error: type, text: str
) -> None:
    sim.fail_next(kind)
    with pytest.raises(error, match=text.replace("(", r"\(").replace(")", r"\)")):
        _pull(db, sim, clock)
    result, message = db.conn.execute("SELECT result, error FROM pulls").fetchone()
    assert result == "failed" and text in message
    assert _count(db, "reports") == 0 and len(_events(db, AuditEvent.PULL_FAILED)) == 1
    assert db.get_setting(LAST_PULL_SETTING) is None


@pytest.mark.parametrize("kind", ["rate_limit_http", "rate_limit_body", "http_500", "server_error_body"])
def test_a_429_or_500_then_success_completes_the_pull(
    db: Store, sim: ExpensifySimulator, clock: FakeClock, kind: str
) -> None:
    sim.fail_next(kind)
    summary = _pull(db, sim, clock)
    assert len(summary.new) == 6 and [r.job_type for r in sim.requests][:2] == ["file", "file"]


def test_a_download_that_is_never_ready_fails_clearly_and_stores_nothing(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    sim.not_ready_polls = 10**6
    with pytest.raises(ExpensifyRetriableError, match="was not ready after 6 polls") as info:
        _pull(db, sim, clock)
    assert info.value.hint == "Expensify may be busy; run mlconnector pull again later"
    assert _count(db, "reports") == _count(db, "expenses") == 0
    assert db.conn.execute("SELECT result FROM pulls").fetchone()[0] == "failed"


def test_an_interrupted_pull_leaves_no_partial_report(db: Store, sim: ExpensifySimulator, clock: FakeClock) -> None:
    order = [r.report_id for r in sim.reports.values() if r.state == "APPROVED"]
    victim = sim.reports[order[2]].data["transactionList"][2]["transactionID"]
    db.conn.execute(
        "CREATE TEMP TRIGGER crash BEFORE INSERT ON expenses WHEN NEW.transaction_id = "
        f"'{victim}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    with pytest.raises(StoreError, match="disk on fire"):
        _pull(db, sim, clock)
    stored = [r[0] for r in db.conn.execute("SELECT report_id FROM reports ORDER BY rowid")]
    assert stored == order[:2]
    assert _count(db, "expenses") == 2 * 4  # nothing of the third report, not even its first expenses
    assert db.conn.execute("SELECT result FROM pulls").fetchone()[0] == "failed"
    db.conn.execute("DROP TRIGGER crash")
    summary = _pull(db, sim, clock)  # the next run completes the job
    assert sorted(summary.unchanged) == sorted(order[:2]) and len(summary.new) == 4


def test_an_exception_mid_stream_stops_cleanly_between_reports(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    def progress(stage: str, done: int, total: int | None) -> None:
        if stage == "parse" and done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _pull(db, sim, clock, progress=progress)
    assert _count(db, "reports") == 3 and _count(db, "expenses") == 3 * 4
    assert db.conn.execute("SELECT result FROM pulls").fetchone()[0] == "failed"


# ------------------------------------------------------------------------------ rate limits


def _worst(times: list[float], period: float) -> int:
    return max((sum(1 for t in times if start <= t < start + period) for start in times), default=0)


def test_the_client_never_exceeds_either_window_on_a_long_pull(
    db: Store, sim: ExpensifySimulator, clock: FakeClock
) -> None:
    summary = _pull(db, sim, clock, since=dt.date(2019, 1, 1), until=dt.date(2026, 11, 24))
    assert len(summary.windows) == 8 and len(summary.new) == 6
    assert len(sim.requests) == 8 * 4  # an export and three download polls per window
    assert not any(r.rate_limited for r in sim.requests)
    times = sim.request_times()
    assert _worst(times, 10.0) <= 5 and _worst(times, 60.0) <= 20
    assert times[-1] - times[0] >= 60  # 32 requests cannot fit in one minute


def test_the_rate_limit_check_can_fail_without_a_limiter(db: Store, sim: ExpensifySimulator, clock: FakeClock) -> None:
    # The same pull with a limiter that allows everything: the simulator must catch it.
    unlimited = RateLimiter(windows=((10**9, 1.0),), clock=clock, sleep=clock.sleep)
    try:
        _pull(db, sim, clock, since=dt.date(2024, 1, 1), until=dt.date(2026, 11, 24),
              client_overrides={"limiter": unlimited, "poll_delay": 0.1})
    except ExpensifyRetriableError:
        pass  # retries may run out; either way the simulator saw the burst
    assert any(r.rate_limited for r in sim.requests)


# ---------------------------------------------------------------------------------- windows


def test_ranges_longer_than_a_year_are_split_without_gaps_or_overlaps() -> None:
    windows = split_range(dt.date(2024, 1, 1), dt.date(2026, 3, 1))
    assert [(w.start, w.end) for w in windows] == [
        (dt.date(2024, 1, 1), dt.date(2024, 12, 30)),
        (dt.date(2024, 12, 31), dt.date(2025, 12, 30)),
        (dt.date(2025, 12, 31), dt.date(2026, 3, 1)),
    ]
    assert all((w.end - w.start).days < 365 for w in windows if w.start and w.end)


def test_windows_come_from_options_then_the_last_pull_then_the_config() -> None:
    today = dt.date(2026, 11, 24)
    assert export_windows(since=dt.date(2026, 5, 1), until=None, last_day=dt.date(2026, 11, 1),
                          start_date=None, today=today) == [ExportWindow(dt.date(2026, 5, 1), today)]
    assert export_windows(since=None, until=None, last_day=dt.date(2026, 11, 1), start_date=None, today=today) == [
        ExportWindow(approved_after=dt.date(2026, 10, 31)), ExportWindow(dt.date(2026, 10, 31), today)]
    assert export_windows(since=None, until=None, last_day=None, start_date=dt.date(2026, 1, 1), today=today) == [
        ExportWindow(dt.date(2026, 1, 1), today)]
    assert export_windows(since=None, until=None, last_day=dt.date(2025, 1, 10), start_date=None, today=today) == [
        ExportWindow(dt.date(2025, 1, 9), dt.date(2026, 1, 8)), ExportWindow(dt.date(2026, 1, 9), today)]
    assert export_windows(since=None, until=dt.date(2026, 6, 30), last_day=dt.date(2026, 11, 1),
                          start_date=dt.date(2026, 1, 1), today=today) == [
        ExportWindow(dt.date(2026, 1, 1), dt.date(2026, 6, 30))]
    with pytest.raises(ConfigError, match="expensify.start_date: missing for the first pull"):
        export_windows(since=None, until=None, last_day=None, start_date=None, today=today)
