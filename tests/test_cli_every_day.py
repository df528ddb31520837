"""The CLI a bookkeeper meets every day (issue #14): output through a pipe, conventions, honest errors.

CliRunner's stdout is not a terminal, as with `mlconnector audit | cat` or a Task Scheduler log.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_report
from mlconnector.services.pull import PullSummary, _fail_run
from mlconnector.store import Store, pulls

SECRET = "every-day-secret-1"
LONG_EMAIL = "anastasia.konstantinopoulou-vanderberg@subsidiary.example.com"


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    recent = dt.date.today() - dt.timedelta(days=10)
    reports = [demo_report(n, 2, start=recent) for n in range(2)]
    reports[0]["accountEmail"] = LONG_EMAIL
    with ExpensifySimulator(reports, partner_user_secret=SECRET, not_ready_polls=0, rate_limits=()) as s:
        yield s


@pytest.fixture
def env(home: Path, sim: ExpensifySimulator) -> dict[str, str]:
    values = {"MLCONNECTOR_QBWC_PASSWORD": "Pw123456", "MLCONNECTOR_EXPENSIFY_SECRET": SECRET}
    result = CliRunner().invoke(app, ["init", "--non-interactive", "--expensify-user", sim.partner_user_id,
                                      "--expensify-url", sim.url], env=values)
    assert result.exit_code == 0, result.output
    return values


def test_audit_through_a_pipe_keeps_every_report_id_event_and_detail_whole(
    env: dict[str, str], sim: ExpensifySimulator
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["pull"], env=env).exit_code == 4  # blocked: no vendor list yet
    out = runner.invoke(app, ["audit"], env=env).output
    for report_id in sim.reports:
        assert report_id in out
    assert "…" not in out and "initialized" in out and LONG_EMAIL in out
    assert "{'" not in out and "[{" not in out  # no Python repr of the details
    assert re.search(r"pull 1; \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d", out)  # a pull's windows in words
    lines_with_fix = [line for line in out.splitlines() if "mlconnector map set employee" in line]
    assert lines_with_fix and all(LONG_EMAIL in line or "example.com" in line for line in lines_with_fix)
    as_json = json.loads(runner.invoke(app, ["audit", "--json"], env=env).output)
    assert as_json == json.loads(runner.invoke(app, ["audit", "--format", "json"], env=env).output)
    status = runner.invoke(app, ["status"], env=env).output
    assert LONG_EMAIL in status and "…" not in status


def test_h_is_help_completion_is_offered_and_demo_comes_first() -> None:
    runner = CliRunner()
    short, long = runner.invoke(app, ["-h"]), runner.invoke(app, ["--help"])
    assert short.exit_code == 0 and short.output == long.output
    assert "--install-completion" in long.output and "--utc" in long.output
    commands = [line.split()[0] for line in long.output.split("Commands:")[1].splitlines() if line.strip()]
    assert commands[:2] == ["demo", "init"]
    assert runner.invoke(app, ["pull", "-h"]).exit_code == 0


def test_a_mistyped_home_creates_nothing_and_status_says_so(tmp_path: Path) -> None:
    typo = tmp_path / "mlconector"
    result = CliRunner().invoke(app, ["--home", str(typo), "status"])
    assert result.exit_code == 0
    assert f"No ml-connector home at {typo}" in result.output and "run mlconnector init" in result.output
    assert not typo.exists()
    data = json.loads(CliRunner().invoke(app, ["--home", str(typo), "status", "--json"]).output)
    assert data["home"] == {"path": str(typo), "exists": False}
    assert not typo.exists()


def test_pull_of_an_unknown_report_id_exits_1_naming_it(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["pull", "--report", "R00NoSuchOne"], env=env)
    assert result.exit_code == 1, result.output
    assert "Error: not found in Expensify: R00NoSuchOne — check the ID" in result.stderr
    data = json.loads(CliRunner().invoke(app, ["pull", "--report", "R00NoSuchOne", "--json"], env=env).stdout)
    assert data["not_found"] == ["R00NoSuchOne"]


def test_a_dry_run_shows_which_reports_would_post_and_which_would_be_blocked_with_the_fix(
    env: dict[str, str], sim: ExpensifySimulator
) -> None:
    runner = CliRunner()
    ann = next(rid for rid, r in sim.reports.items() if r.data["accountEmail"] != LONG_EMAIL)
    email = sim.reports[ann].data["accountEmail"]
    assert runner.invoke(app, ["map", "set", "employee", email, "Some Vendor"], env=env).exit_code == 0
    result = runner.invoke(app, ["pull", "--dry-run", "--json"], env=env)
    preview = {p["report_id"]: p for p in json.loads(result.stdout)["preview"]}
    blocked = next(rid for rid in sim.reports if rid != ann)
    assert preview[blocked]["outcome"] == "blocked"
    assert LONG_EMAIL in preview[blocked]["blocked"][0]["reason"]
    shown = runner.invoke(app, ["pull", "--dry-run"], env=env).output
    assert "Would be planned as (dry run: nothing stored)" in shown and "would be blocked" in shown
    assert f"mlconnector map set employee {LONG_EMAIL}" in shown


def test_an_interrupted_pull_says_so_in_status_not_keyboardinterrupt(home: Path, env: dict[str, str]) -> None:
    store = Store.open(home / "state.db")
    try:
        summary = PullSummary(pull_id=pulls.start_pull(store))
        _fail_run(store, summary, KeyboardInterrupt())
    finally:
        store.close()
    out = CliRunner().invoke(app, ["status"], env=env).output
    assert "interrupted (Ctrl-C)" in out and "KeyboardInterrupt" not in out


def test_the_log_file_carries_the_zone_of_its_times(home: Path, env: dict[str, str]) -> None:
    CliRunner().invoke(app, ["pull"], env=env)
    text = (home / "logs" / "mlconnector.log").read_text()
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ", text)


def test_a_retry_is_announced_on_stderr_and_the_pull_goes_on(env: dict[str, str], sim: ExpensifySimulator) -> None:
    sim.fail_next("http_503")
    result = CliRunner().invoke(app, ["pull", "--json"], env=env)
    assert result.exit_code in (0, 4), result.output
    assert "trying again in" in result.stderr and "(2 of " in result.stderr
    assert json.loads(result.stdout)["result"] == "ok"  # stdout is still only the JSON


def test_a_pull_that_blocks_a_report_tells_the_webhook_once(
    home: Path, env: dict[str, str], sim: ExpensifySimulator
) -> None:
    from .test_notify import _HookServer, Webhook

    state = Webhook()
    server = _HookServer(state)
    state.port = server.server_address[1]
    import threading

    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        config = home / "config.toml"
        assert 'webhook_url = ""' in config.read_text()  # init writes every [notify] key
        config.write_text(config.read_text().replace('webhook_url = ""', f'webhook_url = "{state.url}"'))
        runner = CliRunner()
        assert runner.invoke(app, ["pull"], env=env).exit_code == 4
        assert runner.invoke(app, ["pull"], env=env).exit_code == 4  # nothing new: nothing sent again
    finally:
        server.shutdown()
        server.server_close()
    (post,) = state.posts
    assert "blocked" in post["text"] and LONG_EMAIL in post["text"] and "mlconnector map set employee" in post["text"]


def test_a_webhook_url_is_never_echoed_in_a_config_error(home: Path, env: dict[str, str]) -> None:
    config = home / "config.toml"
    token = "XyZSeCrEtToKeN"
    config.write_text(config.read_text().replace('webhook_url = ""', f'webhook_url = "hooks.slack.com/services/T0/B0/{token}"'))
    for args in (["status"], ["status", "--json"], ["pull"]):
        result = CliRunner().invoke(app, args, env=env)
        assert token not in result.output, args
    assert "notify.webhook_url" in CliRunner().invoke(app, ["status"], env=env).output


def test_interactive_init_keeps_an_environment_secret_out_of_config_toml(home: Path) -> None:
    answers = "aa_user\nmlconnector\nsupersecret1\nsupersecret1\nbill\n\n"
    result = CliRunner().invoke(app, ["init"], input=answers, env={"MLCONNECTOR_EXPENSIFY_SECRET": "EnvSecretValue123"})
    assert result.exit_code == 0, result.output
    assert "EnvSecretValue123" not in (home / "config.toml").read_text()
    assert "Using MLCONNECTOR_EXPENSIFY_SECRET from the environment" in result.output


def test_the_demo_written_to_a_file_is_not_padded_to_the_pipe_width(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert len(result.output) < 60_000
    assert "mlconnector init" in result.output


def test_notify_test_reports_a_channel_that_fails_unexpectedly_by_name(env: dict[str, str]) -> None:
    import datetime as dt

    from mlconnector.config import Config, NotifyConfig
    from mlconnector.services.notify import send_test

    config = Config(notify=NotifyConfig(webhook_url="https://hooks.example.com/services/T/B/tok"))

    def broken(channel: str, message: object) -> None:
        raise UnicodeEncodeError("ascii", "ö", 0, 1, "ordinal not in range")

    (outcome,) = send_test(config, company="Acme", now=dt.datetime.now(dt.timezone.utc), send=broken)
    assert not outcome.sent and "webhook" in outcome.detail and outcome.fix == "details are in the log file"


def test_a_failing_alert_channel_shows_in_status(home: Path, env: dict[str, str]) -> None:
    from mlconnector.store.alerts import record_attempt

    store = Store.open(home / "state.db")
    try:
        with store.atomic():
            record_attempt(store, "email", at="2026-11-29T06:00:00+00:00", next_at="2026-11-29T06:15:00+00:00",
                           error="the mail server refused the login")
    finally:
        store.close()
    out = CliRunner().invoke(app, ["status"], env=env).output
    assert "Alerts by email are failing" in out and "refused the login" in out
    data = json.loads(CliRunner().invoke(app, ["status", "--json"], env=env).output)
    assert data["alerts"][0]["channel"] == "email" and "refused" in data["alerts"][0]["last_error"]
