"""``mlconnector pull`` exits 4 while any report waits for a person, not only the ones this pull blocked.

A Task Scheduler run must never show success (0) while blocked or failed postings sit in the state
file: the human output and ``--json`` say how many wait in total and point at ``mlconnector status``.
A ``--dry-run`` shows the same count but exits 4 only for invalid reports (it plans nothing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.models import PostingState
from mlconnector.paths import resolve_paths
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports
from mlconnector.services.pull import WAITING_HINT, waiting_for_a_person
from mlconnector.store import Store
from mlconnector.store.postings import add_posting, postings_in, transition
from mlconnector.store.reports import save_report
from tests import factories

SECRET = "exit-secret-5151"
NOTHING_WAITS = {"reports": 0, "postings": 0, "blocked": 0, "failed": 0, "hint": WAITING_HINT}


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(demo_reports(3, 2), partner_user_secret=SECRET, not_ready_polls=0, rate_limits=()) as s:
        yield s


@pytest.fixture
def env(home: Path, sim: ExpensifySimulator) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[expensify]\npartner_user_id = "{sim.partner_user_id}"\nurl = "{sim.url}"\nstart_date = "2026-01-01"\n'
        "mark_exported = false\n"
    )
    return {"MLCONNECTOR_EXPENSIFY_SECRET": SECRET}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _pull_json(runner: CliRunner, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["pull", "--json", *args], env=env)
    return result.exit_code, json.loads(result.output)


def _map_employees(runner: CliRunner, env: dict[str, str], sim: ExpensifySimulator) -> None:
    emails = sorted({r.data["accountEmail"] for r in sim.reports.values()})
    for n, email in enumerate(emails):
        result = runner.invoke(app, ["map", "set", "employee", email, f"Employee {n}"], env=env)
        assert result.exit_code == 0, result.output


def _fail_one_posting(home: Path) -> str:
    """QuickBooks refused one queued posting (as the Web Connector would record it)."""
    store = Store.open(resolve_paths(home).state_file)
    try:
        posting = postings_in(store, PostingState.QUEUED)[0]
        transition(store, posting.id, PostingState.SENT, actor="test")
        transition(store, posting.id, PostingState.FAILED, actor="test", reason="3140: invalid reference",
                   qb_status_code=3140, qb_status_message="There is an invalid reference")
        return posting.report_id
    finally:
        store.close()


def test_a_second_pull_still_exits_4_while_reports_blocked_by_the_first_one_wait(
    runner: CliRunner, env: dict[str, str]
) -> None:
    first, data = _pull_json(runner, env)
    assert first == 4 and len(data["plan"]["blocked_reports"]) == 3
    second, data = _pull_json(runner, env)
    assert data["counts"]["new"] == 0 and data["plan"]["blocked"] == []  # nothing newly blocked...
    assert second == 4  # ...but three reports still wait for a person
    assert data["waiting"] == {"reports": 3, "postings": 3, "blocked": 3, "failed": 0, "hint": WAITING_HINT}


def test_a_failed_posting_from_the_web_connector_makes_the_next_pull_exit_4(
    runner: CliRunner, env: dict[str, str], sim: ExpensifySimulator, home: Path
) -> None:
    _map_employees(runner, env, sim)
    code, data = _pull_json(runner, env)
    assert code == 0 and data["waiting"] == NOTHING_WAITS
    report_id = _fail_one_posting(home)
    code, data = _pull_json(runner, env)
    assert code == 4, data
    assert data["waiting"] == {"reports": 1, "postings": 1, "blocked": 0, "failed": 1, "hint": WAITING_HINT}
    assert data["invalid"] == [] and data["plan"]["blocked"] == []
    table = runner.invoke(app, ["pull"], env=env)
    assert table.exit_code == 4
    assert ("Waiting for a person: 1 report(s) in all (0 blocked, 1 failed posting(s)); mlconnector status lists"
            " each one with the reason and the fix") in " ".join(table.output.split())
    status = json.loads(runner.invoke(app, ["status", "--json"], env=env).output)
    assert [item["report_id"] for item in status["failed"]["items"]] == [report_id]


def test_pull_exits_0_again_once_nothing_waits(runner: CliRunner, env: dict[str, str], sim: ExpensifySimulator) -> None:
    assert _pull_json(runner, env)[0] == 4
    _map_employees(runner, env, sim)  # a mapping change plans the blocked reports again: now queued
    code, data = _pull_json(runner, env)
    assert code == 0 and data["waiting"] == NOTHING_WAITS
    table = runner.invoke(app, ["pull"], env=env)
    assert table.exit_code == 0 and "Waiting for a person" not in table.output


def test_a_dry_run_shows_what_waits_but_exits_4_only_for_invalid_reports(
    runner: CliRunner, env: dict[str, str], sim: ExpensifySimulator
) -> None:
    assert _pull_json(runner, env)[0] == 4
    code, data = _pull_json(runner, env, "--dry-run")
    assert code == 0 and data["dry_run"] and "plan" not in data
    assert data["waiting"]["reports"] == 3 and data["waiting"]["blocked"] == 3
    table = runner.invoke(app, ["pull", "--dry-run"], env=env)
    assert table.exit_code == 0 and "(a dry run does not exit 4 for them)" in " ".join(table.output.split())
    sim.edit_report(next(iter(sim.reports)), lambda d: d.update(accountEmail=""))
    assert _pull_json(runner, env, "--dry-run", "--since", "2026-01-01")[0] == 4


def test_waiting_counts_each_report_once_across_blocked_and_failed_parts(store: Store) -> None:
    assert waiting_for_a_person(store) == NOTHING_WAITS
    for report_id in ("R1", "R2", "R3"):
        save_report(store, factories.report(report_id), actor="test")
    fingerprint = {"report_fingerprint": "f", "actor": "test"}
    add_posting(store, factories.bill("R1", 1, 2), state=PostingState.BLOCKED, reason="no vendor", **fingerprint)
    for report_id, part, count in (("R1", 2, 2), ("R2", 1, 1)):
        posting_id = add_posting(store, factories.bill(report_id, part, count), state=PostingState.QUEUED,
                                 **fingerprint)
        transition(store, posting_id, PostingState.SENT, actor="test")
        transition(store, posting_id, PostingState.FAILED, actor="test", reason="3140")
    add_posting(store, factories.bill("R3"), state=PostingState.QUEUED, **fingerprint)
    assert waiting_for_a_person(store) == {"reports": 2, "postings": 3, "blocked": 1, "failed": 2,
                                           "hint": WAITING_HINT}
