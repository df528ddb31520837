"""Day one: a home made only by `init --non-interactive` pulls with no options, day after day; a `pull --since`
moves the next plain pull on; a home without a start date says so in `status` (issue #14, point 1)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_report

SECRET = "day-one-secret-77"


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    recent = dt.date.today() - dt.timedelta(days=20)
    reports = [demo_report(n, 3, start=recent) for n in range(3)]
    with ExpensifySimulator(reports, partner_user_secret=SECRET, not_ready_polls=0, rate_limits=()) as s:
        yield s


def _pull(runner: CliRunner, env: dict[str, str], *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["pull", "--json", *args], env=env)
    assert result.exit_code in (0, 4), result.output  # 4: reports wait for the vendor list, as on any day one
    data: dict[str, Any] = json.loads(result.output)
    assert data["result"] == "ok", data
    return data


def test_a_home_made_by_init_alone_pulls_with_no_options_twice_and_after_a_since_pull(
    home: Path, sim: ExpensifySimulator
) -> None:
    runner = CliRunner()
    env = {"MLCONNECTOR_QBWC_PASSWORD": "Pw123456", "MLCONNECTOR_EXPENSIFY_SECRET": SECRET}
    init = runner.invoke(app, ["init", "--non-interactive", "--expensify-user", sim.partner_user_id,
                               "--expensify-url", sim.url], env=env)
    assert init.exit_code == 0, init.output
    first = _pull(runner, env)
    assert len(first["new"]) == 3
    second = _pull(runner, env)
    assert second["counts"]["new"] == 0 and "approved_after" in second["windows"][0]
    # The Expensify lists `map check` compares come with the first pull, then once a day.
    assert first["expensify_lists"] == {"refreshed": True, "error": None}
    assert second["expensify_lists"] == {"refreshed": False, "error": None}
    since = _pull(runner, env, "--since", (dt.date.today() - dt.timedelta(days=40)).isoformat())
    assert since["counts"]["unchanged"] == 3
    assert _pull(runner, env)["windows"][0].get("approved_after")  # continues from the --since pull


def test_without_a_start_date_status_says_so_and_a_since_pull_lets_the_next_plain_pull_run(
    home: Path, sim: ExpensifySimulator
) -> None:
    runner = CliRunner()
    home.mkdir(parents=True)
    (home / "config.toml").write_text(  # an older install: no start_date
        f'[expensify]\npartner_user_id = "{sim.partner_user_id}"\nurl = "{sim.url}"\n')
    env = {"MLCONNECTOR_EXPENSIFY_SECRET": SECRET}
    assert runner.invoke(app, ["pull"], env=env).exit_code == 1  # no start, no earlier pull
    status = json.loads(runner.invoke(app, ["status", "--json"], env=env).output)
    assert any(p.startswith("expensify.start_date: missing") for p in status["config"]["problems"])
    _pull(runner, env, "--since", (dt.date.today() - dt.timedelta(days=40)).isoformat())
    assert _pull(runner, env)["windows"][0].get("approved_after")  # the plain pull the schedule runs now works
    status = json.loads(runner.invoke(app, ["status", "--json"], env=env).output)
    assert status["config"]["problems"] == []


def test_a_later_since_pull_does_not_move_the_next_plain_pull_past_days_it_did_not_look_at(
    home: Path, sim: ExpensifySimulator
) -> None:
    from mlconnector.store import Store
    from mlconnector.store.pulls import LAST_PULL_SETTING

    runner = CliRunner()
    env = {"MLCONNECTOR_QBWC_PASSWORD": "Pw123456", "MLCONNECTOR_EXPENSIFY_SECRET": SECRET}
    assert runner.invoke(app, ["init", "--non-interactive", "--expensify-user", sim.partner_user_id,
                               "--expensify-url", sim.url], env=env).exit_code == 0
    _pull(runner, env)
    store = Store.open(home / "state.db")
    try:
        store.set_setting(LAST_PULL_SETTING, (dt.date.today() - dt.timedelta(days=30)).isoformat())
    finally:
        store.close()
    # A look at the last week only: reports approved since the last plain pull (a month ago) are not in it.
    _pull(runner, env, "--since", (dt.date.today() - dt.timedelta(days=7)).isoformat())
    plain = _pull(runner, env)
    assert plain["windows"][0]["approved_after"] == (dt.date.today() - dt.timedelta(days=31)).isoformat()
