"""``mlconnector pull`` and ``mlconnector map refresh`` end to end: CLI → service → loopback simulator."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.cli.pull import _PullProgress
from mlconnector.paths import resolve_paths
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports
from mlconnector.services.locking import exclusive

SECRET = "cli-secret-4242"


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    # Real time in CLI tests: no not-ready polls and no server-side limits, so nothing waits.
    with ExpensifySimulator(demo_reports(4, 3), partner_user_secret=SECRET, not_ready_polls=0, rate_limits=()) as s:
        yield s


@pytest.fixture
def configured(home: Path, sim: ExpensifySimulator) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[expensify]\npartner_user_id = "{sim.partner_user_id}"\nurl = "{sim.url}"\nstart_date = "2026-01-01"\n'
    )
    return {"MLCONNECTOR_EXPENSIFY_SECRET": SECRET}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _map_employees(runner: CliRunner, env: dict[str, str], sim: ExpensifySimulator) -> None:
    emails = sorted({r.data["accountEmail"] for r in sim.reports.values()})
    for n, email in enumerate(emails):
        result = runner.invoke(app, ["map", "set", "employee", email, f"Employee {n}"], env=env)
        assert result.exit_code == 0, result.output


def test_pull_queues_mapped_reports_prints_a_summary_table_and_exits_0(
    runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator
) -> None:
    _map_employees(runner, configured, sim)
    result = runner.invoke(app, ["pull"], env=configured)
    assert result.exit_code == 0, result.output
    rows = {cells[0]: cells[1] for cells in (
        [c.strip() for c in line.strip("│").split("│")] for line in result.output.splitlines() if line.startswith("│"))}
    assert rows["New"] == "4" and rows["Unchanged"] == rows["Invalid"] == "0"
    assert "Queued for QuickBooks: 4 report(s)" in result.output
    assert SECRET not in result.output


def test_pull_exits_4_and_says_why_when_reports_are_blocked(
    runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator
) -> None:
    result = runner.invoke(app, ["pull", "--json"], env=configured)
    assert result.exit_code == 4, result.output
    data = json.loads(result.output)
    assert data["counts"]["new"] == 4 and data["plan"]["queued"] == []
    assert len(data["plan"]["blocked_reports"]) == 4
    assert all("mlconnector map set employee" in b["fix"] for b in data["plan"]["blocked"])


def test_pull_json_has_the_summary_shape_and_no_secret(
    runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator
) -> None:
    _map_employees(runner, configured, sim)
    result = runner.invoke(app, ["pull", "--json"], env=configured)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"result", "dry_run", "pull_id", "windows", "counts", "new", "unchanged", "changed",
                         "changed_after_posting", "invalid", "stamped", "stamp_error", "plan", "waiting", "watched",
                         "reimbursed", "payments_queued", "not_found", "expensify_lists"}
    assert data["result"] == "ok" and data["counts"]["new"] == 4 and len(data["new"]) == 4
    assert data["windows"] == [{"start": "2026-01-01", "end": data["windows"][0]["end"]}]
    assert SECRET not in result.output
    again = json.loads(runner.invoke(app, ["pull", "--json", "--since", "2026-01-01"], env=configured).output)
    assert again["counts"]["new"] == 0 and again["counts"]["unchanged"] == 4


def test_pull_exits_4_and_names_each_invalid_report(
    runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator
) -> None:
    bad = next(iter(sim.reports))
    sim.edit_report(bad, lambda d: d.update(accountEmail=""))
    result = runner.invoke(app, ["pull", "--json"], env=configured)
    assert result.exit_code == 4
    assert json.loads(result.output)["invalid"] == [
        {"report_id": bad, "reason": "the report has no submitter email (accountEmail)"}]
    table = runner.invoke(app, ["pull", "--since", "2026-01-01"], env=configured)
    assert table.exit_code == 4 and bad in table.output and "no submitter email" in table.output


def test_pull_exits_3_with_expensifys_message_on_one_line(
    runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator
) -> None:
    sim.fail_next("validation", message="Required parameter 'policyIDList' is missing")
    result = runner.invoke(app, ["pull"], env=configured)
    assert result.exit_code == 3
    assert result.output == (
        "Error: Expensify rejected the request (410): Required parameter 'policyIDList' is missing\n")


def test_pull_exits_3_on_bad_credentials_with_the_fix(runner: CliRunner, configured: dict[str, str]) -> None:
    result = runner.invoke(app, ["pull"], env={"MLCONNECTOR_EXPENSIFY_SECRET": "wrong-secret-9999"})
    assert result.exit_code == 3
    assert result.output == (
        "Error: Expensify refused the credentials (401): Authentication error: wrong partnerUserID or "
        "partnerUserSecret — check expensify.partner_user_id and the secret (MLCONNECTOR_EXPENSIFY_SECRET)\n")
    assert "wrong-secret-9999" not in result.output


def test_pull_exits_1_and_names_the_key_when_the_secret_is_missing(
    runner: CliRunner, configured: dict[str, str]
) -> None:
    result = runner.invoke(app, ["pull"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: expensify.partner_user_secret: missing (set MLCONNECTOR_EXPENSIFY_SECRET or run mlconnector init)\n")


def test_pull_refuses_to_run_while_another_pull_holds_the_lock(
    runner: CliRunner, configured: dict[str, str], home: Path, sim: ExpensifySimulator
) -> None:
    with exclusive(resolve_paths(home).lock_file):
        result = runner.invoke(app, ["pull"], env=configured)
    assert result.exit_code == 1 and result.output.startswith("Error: another mlconnector pull is running")
    assert sim.requests == []


def test_pull_dry_run_stores_nothing(runner: CliRunner, configured: dict[str, str]) -> None:
    dry = json.loads(runner.invoke(app, ["pull", "--dry-run", "--json"], env=configured).output)
    assert dry["dry_run"] and dry["counts"]["new"] == 4 and dry["pull_id"] is None
    real = json.loads(runner.invoke(app, ["pull", "--json"], env=configured).output)
    assert real["counts"]["new"] == 4


def test_pull_by_report_id(runner: CliRunner, configured: dict[str, str], sim: ExpensifySimulator) -> None:
    wanted = sorted(sim.reports)[:2]
    args = ["pull", "--json"] + [x for rid in wanted for x in ("--report", rid)]
    data = json.loads(runner.invoke(app, args, env=configured).output)
    assert sorted(data["new"]) == wanted


def test_pull_rejects_a_malformed_date_as_a_usage_error(runner: CliRunner, configured: dict[str, str]) -> None:
    assert runner.invoke(app, ["pull", "--since", "01/02/2026"], env=configured).exit_code == 2


def test_map_refresh_stores_the_lists(runner: CliRunner, configured: dict[str, str]) -> None:
    result = runner.invoke(app, ["map", "refresh", "--json"], env=configured)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["policies"]["0810E551A5F2A9C2"] == {"category": 6, "tag": 5, "employee": 6}
    table = runner.invoke(app, ["map", "refresh"], env=configured)
    assert table.exit_code == 0 and "0810E551A5F2A9C2" in table.output


def test_progress_bars_draw_on_a_terminal_and_stay_silent_otherwise() -> None:
    shown = io.StringIO()
    with _PullProgress(Console(file=shown, force_terminal=True, width=100), True) as bars:
        for stage in ("export", "download", "parse", "store"):
            bars(stage, 1, 2 if stage != "download" else None)
    assert "Export jobs done" in shown.getvalue() and "Storing" in shown.getvalue()
    # While Expensify prepares a job's file the bar says so and does not count the job done.
    waiting = io.StringIO()
    with _PullProgress(Console(file=waiting, force_terminal=True, width=120), True) as bars:
        bars("wait", 1, 1)
    assert "Waiting for Expensify's file (job 1 of 1)" in waiting.getvalue()
    assert "1/1" not in waiting.getvalue() and "0/1" in waiting.getvalue()
    quiet = io.StringIO()
    with _PullProgress(Console(file=quiet), False) as bars:
        bars("export", 1, 1)
    assert quiet.getvalue() == ""


def test_status_shows_the_last_pull_and_reports_changed_after_posting(
    runner: CliRunner, configured: dict[str, str], home: Path, sim: ExpensifySimulator
) -> None:
    _map_employees(runner, configured, sim)
    assert runner.invoke(app, ["pull"], env=configured).exit_code == 0
    from mlconnector.store import Store

    store = Store.open(home / "state.db")
    store.conn.execute("UPDATE reports SET changed_after_posting = 1 WHERE rowid = 1")
    flagged = store.conn.execute("SELECT report_id FROM reports WHERE rowid = 1").fetchone()[0]
    store.close()
    data = json.loads(runner.invoke(app, ["status", "--json"], env=configured).output)
    assert data["last_pull"]["result"] == "ok" and data["changed_after_posting"] == [flagged]
    text = runner.invoke(app, ["status"], env=configured).output
    assert "Last pull: ok" in text and flagged in text
