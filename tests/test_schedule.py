"""`serve`'s own schedule (issue #17): when pulls are due, a scheduled pull against the Expensify simulator,
the lock shared with `mlconnector pull` (skip and say so), and what `status` shows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.config import Config, ScheduleConfig, load_config
from mlconnector.paths import resolve_paths
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_report
from mlconnector.services.locking import exclusive
from mlconnector.services.schedule import Scheduler, next_pull_at
from mlconnector.store import Store

SECRET = "schedule-secret-9"
LOCAL = dt.datetime.now().astimezone().tzinfo


def _local(hour: int, minute: int = 0, day: int = 10) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=LOCAL)


def test_pulls_are_due_at_the_local_times_and_every_n_minutes() -> None:
    at = ScheduleConfig(pull_at=("06:00", "13:30"))
    assert next_pull_at(at, _local(5, 0), None) == _local(6)
    assert next_pull_at(at, _local(6, 0), None) == _local(6)  # due now
    assert next_pull_at(at, _local(7), _local(6)) == _local(13, 30)
    assert next_pull_at(at, _local(14), _local(13, 30)) == _local(6, day=11)
    every = ScheduleConfig(pull_every_minutes=60)
    assert next_pull_at(every, _local(7), _local(6, 30)) == _local(7, 30)
    assert next_pull_at(ScheduleConfig(), _local(7), None) is None


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    recent = dt.date.today() - dt.timedelta(days=5)
    with ExpensifySimulator([demo_report(n, 2, start=recent) for n in range(2)], partner_user_secret=SECRET,
                            not_ready_polls=0, rate_limits=()) as s:
        yield s


@pytest.fixture
def configured(home: Path, sim: ExpensifySimulator, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("MLCONNECTOR_EXPENSIFY_SECRET", SECRET)
    result = CliRunner().invoke(app, ["init", "--non-interactive", "--expensify-user", sim.partner_user_id,
                                      "--expensify-url", sim.url], env={"MLCONNECTOR_QBWC_PASSWORD": "Pw123456"})
    assert result.exit_code == 0, result.output
    config = load_config(home / "config.toml")
    return dataclasses.replace(config, schedule=ScheduleConfig(pull_every_minutes=60))


def test_a_scheduled_pull_runs_when_due_records_its_result_and_status_shows_it(
    home: Path, configured: Config, sim: ExpensifySimulator
) -> None:
    clock = [dt.datetime.now(dt.timezone.utc)]
    scheduler = Scheduler(resolve_paths(home, environ={}), configured, now=lambda: clock[0])
    assert scheduler.tick() is None  # the first is an hour after start
    clock[0] += dt.timedelta(minutes=61)
    assert scheduler.tick() == "ok"
    store = Store.open(home / "state.db")
    try:
        stored = store.conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
    finally:
        store.close()
    assert stored == 2
    assert scheduler.tick() is None  # not due again for an hour
    (home / "config.toml").write_text((home / "config.toml").read_text().replace(
        "pull_every_minutes = 0", "pull_every_minutes = 60"))
    status = json.loads(CliRunner().invoke(app, ["status", "--json"]).output)
    assert status["schedule"]["last_pull"]["result"] == "ok"
    assert status["schedule"]["next_pull"] is not None
    assert "Schedule: next pull" in CliRunner().invoke(app, ["status"]).output


def test_a_scheduled_pull_skips_and_says_so_while_another_pull_holds_the_lock(home: Path, configured: Config) -> None:
    paths = resolve_paths(home, environ={})
    clock = [dt.datetime.now(dt.timezone.utc)]
    scheduler = Scheduler(paths, configured, now=lambda: clock[0], lock_wait=0.2)
    clock[0] += dt.timedelta(hours=2)
    with exclusive(paths.lock_file):  # a pull from Task Scheduler is running
        assert scheduler.tick() == "skipped"
    store = Store.open(home / "state.db")
    try:
        from mlconnector.services.schedule import last_scheduled_pull

        last = last_scheduled_pull(store)
    finally:
        store.close()
    assert last is not None and last["result"] == "skipped" and "another pull was running" in last["detail"]["why"]


def test_a_session_end_runs_the_alert_check_at_once_in_the_schedules_thread(
    home: Path, configured: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import mlconnector.services.notify as notify

    calls: list[tuple[str, str]] = []

    def spy(store: Store, config: Config, *, now: dt.datetime, trigger: str, **kw: object) -> None:
        calls.append((trigger, threading.current_thread().name))

    monkeypatch.setattr(notify, "send_alerts", spy)
    scheduler = Scheduler(resolve_paths(home, environ={}), configured, interval=3600)
    scheduler.start()
    try:
        scheduler.alert_soon()
        for _ in range(100):
            if calls:
                break
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert calls == [("serve", "mlconnector-schedule")]


def test_serves_scheduled_pull_holds_the_lock_and_a_manual_pull_meanwhile_is_refused(
    home: Path, configured: Config, sim: ExpensifySimulator
) -> None:
    import time

    from mlconnector.errors import LockedError

    sim.not_ready_polls = 1  # Expensify takes a few seconds to prepare the file: the pull is under way a while
    clock = [dt.datetime.now(dt.timezone.utc)]
    paths = resolve_paths(home, environ={})
    scheduler = Scheduler(paths, configured, now=lambda: clock[0], interval=0.05)
    clock[0] += dt.timedelta(minutes=61)  # the hourly pull is due
    scheduler.start()
    try:
        held = False
        for _ in range(200):  # until the scheduled pull holds the lock
            try:
                with exclusive(paths.lock_file):
                    pass
            except LockedError:
                held = True
                break
            time.sleep(0.01)
        assert held
        manual = CliRunner().invoke(app, ["pull"])
        assert manual.exit_code == 1
        assert "another mlconnector pull is running" in manual.output
        for _ in range(500):
            store = Store.open(home / "state.db")
            try:
                from mlconnector.services.schedule import last_scheduled_pull

                last = last_scheduled_pull(store)
            finally:
                store.close()
            if last:
                break
            time.sleep(0.02)
    finally:
        scheduler.stop()
    assert last is not None and last["result"] == "ok" and last["detail"]["counts"]["new"] == 2


def test_a_scheduled_pull_that_fails_unexpectedly_is_recorded_and_not_retried_every_round(
    home: Path, configured: Config
) -> None:
    def broken(config: Config) -> object:
        raise RuntimeError("disk full while preparing the export")

    clock = [dt.datetime.now(dt.timezone.utc)]
    scheduler = Scheduler(resolve_paths(home, environ={}), configured, now=lambda: clock[0], client_factory=broken)
    clock[0] += dt.timedelta(minutes=61)
    assert scheduler.tick() == "failed"
    clock[0] += dt.timedelta(seconds=30)
    assert scheduler.tick() is None  # due again only in an hour, not at the next round
