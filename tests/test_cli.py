from __future__ import annotations

import datetime as dt

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlconnector.cli import app
from mlconnector.passwords import verify_password
from mlconnector.store.migrations import MIGRATIONS

PASSWORD = "correct horse battery"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _init(runner: CliRunner, *args: str, password: str | None = PASSWORD) -> Result:
    env = {"MLCONNECTOR_QBWC_PASSWORD": password} if password else {}
    return runner.invoke(app, ["init", "--non-interactive", *args], env=env)


def test_init_non_interactive_writes_config_and_state(runner: CliRunner, home: Path) -> None:
    result = _init(runner, "--expensify-user", "aa_acme_com", "--mode", "journal", "--qbwc-user", "acme")
    assert result.exit_code == 0, result.output
    config = (home / "config.toml").read_text()
    assert 'partner_user_id = "aa_acme_com"' in config and 'mode = "journal"' in config
    assert (home / "state.db").exists()
    if os.name == "posix":
        assert (home / "config.toml").stat().st_mode & 0o777 == 0o600


def test_init_stores_the_password_only_as_a_salted_hash_and_never_prints_it(
    runner: CliRunner, home: Path
) -> None:
    result = _init(runner)
    assert PASSWORD not in result.output
    text = (home / "config.toml").read_text()
    assert PASSWORD not in text
    stored = text.split('password_hash = "')[1].split('"')[0]
    assert stored.startswith("scrypt$") and verify_password(PASSWORD, stored)
    assert not verify_password("wrong", stored)
    for log in (home / "logs").glob("*"):
        assert PASSWORD not in log.read_text()
    db = (home / "state.db").read_bytes() + b"".join(p.read_bytes() for p in home.glob("state.db-*"))
    assert PASSWORD.encode() not in db


def test_init_refuses_to_overwrite_without_force(runner: CliRunner, home: Path) -> None:
    assert _init(runner, "--expensify-user", "first").exit_code == 0
    before = (home / "config.toml").read_text()
    result = _init(runner, "--expensify-user", "second")
    assert result.exit_code == 1
    assert result.output == f"Error: {home / 'config.toml'} already exists — pass --force to overwrite it (existing values are kept)\n"
    assert (home / "config.toml").read_text() == before


def test_init_force_overwrites_and_keeps_values_not_given(runner: CliRunner, home: Path) -> None:
    assert _init(runner, "--expensify-user", "first", "--mode", "journal").exit_code == 0
    result = _init(runner, "--force", "--expensify-user", "second", password=None)
    assert result.exit_code == 0, result.output
    text = (home / "config.toml").read_text()
    assert 'partner_user_id = "second"' in text and 'mode = "journal"' in text


def test_init_without_a_password_names_the_variable(runner: CliRunner) -> None:
    result = _init(runner, password=None)
    assert result.exit_code == 1
    assert result.output == (
        "Error: qbwc.password_hash: no Web Connector password given (set MLCONNECTOR_QBWC_PASSWORD)\n"
    )


def test_init_rejects_a_bad_mode_in_one_line(runner: CliRunner) -> None:
    result = _init(runner, "--mode", "cheque")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "quickbooks.mode" in result.output


def test_init_interactive_prompts_and_hides_secrets(runner: CliRunner, home: Path) -> None:
    answers = "aa_acme_com\nexp-secret-value\nqbuser\nPw123456\nPw123456\nbill\n\n"
    result = runner.invoke(app, ["init"], input=answers)
    assert result.exit_code == 0, result.output
    assert "exp-secret-value" not in result.output and "Pw123456" not in result.output
    text = (home / "config.toml").read_text()
    assert 'username = "qbuser"' in text and 'partner_user_secret = "exp-secret-value"' in text
    assert "start_date = " in text


def test_interactive_init_says_what_is_needed_and_asks_a_mistyped_answer_again(
    runner: CliRunner, home: Path
) -> None:
    # A one-character password, then a typo in the mode, then a bad day: each asked again, nothing retyped.
    answers = "aa_acme_com\nexp-secret-value\nqbuser\nx\nx\nPw123456\nPw123456\ncheque\njournal\n2026-13-01\n2026-02-01\n"
    result = runner.invoke(app, ["--home", str(home), "init"], input=answers)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Setting up ml-connector. You will need:")
    assert "use 8 characters or more; try again." in result.output
    assert "answer bill, check or journal; try again." in result.output
    assert "write the day as YYYY-MM-DD" in result.output
    text = (home / "config.toml").read_text()
    assert 'mode = "journal"' in text and 'start_date = "2026-02-01"' in text
    assert f"Next: mlconnector --home {home} check" in result.output


def test_non_interactive_init_keeps_the_secret_in_the_environment_and_sets_a_start_date(
    runner: CliRunner, home: Path
) -> None:
    result = runner.invoke(app, ["init", "--non-interactive", "--expensify-user", "aa"],
                           env={"MLCONNECTOR_QBWC_PASSWORD": "Pw123456", "MLCONNECTOR_EXPENSIFY_SECRET": "s3cr3t-env"})
    assert result.exit_code == 0, result.output
    text = (home / "config.toml").read_text()
    assert "s3cr3t-env" not in text
    first_of_last_month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    assert f'start_date = "{first_of_last_month.isoformat()}"' in text
    assert f"The first pull exports reports from {first_of_last_month.isoformat()}" in result.output
    assert "Expensify credentials are not set yet" not in result.output
    explicit = runner.invoke(app, ["init", "--non-interactive", "--force", "--start-date", "2026-03-01"],
                             env={"MLCONNECTOR_QBWC_PASSWORD": "Pw123456"})
    assert explicit.exit_code == 0 and 'start_date = "2026-03-01"' in (home / "config.toml").read_text()


def test_status_json_reports_config_state_and_zero_counts(runner: CliRunner, home: Path) -> None:
    assert _init(runner, "--expensify-user", "aa").exit_code == 0
    result = runner.invoke(app, ["status", "--json"], env={"MLCONNECTOR_EXPENSIFY_SECRET": "s3cr3t-value"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["config"]["found"] and data["config"]["expensify_credentials"] is True
    assert data["state"]["schema_version"] == MIGRATIONS[-1].name
    assert set(data["postings"].values()) == {0}
    assert "s3cr3t-value" not in result.output and "scrypt" not in result.output


def test_status_before_init_says_what_to_do_and_creates_nothing(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0
    assert "run mlconnector init" in result.output
    assert not (home / "state.db").exists()


def test_status_lists_each_config_problem(runner: CliRunner, home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[quickbooks]\nmode = "cheque"\nmax_lines_per_txn = 0\n')
    data = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert [p.split(":")[0] for p in data["config"]["problems"]] == ["quickbooks.mode", "quickbooks.max_lines_per_txn"]


def test_home_and_config_options_override_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "other"
    result = runner.invoke(
        app, ["--home", str(other), "init", "--non-interactive"], env={"MLCONNECTOR_QBWC_PASSWORD": "x"}
    )
    assert result.exit_code == 0, result.output
    assert (other / "config.toml").exists()
    data = json.loads(runner.invoke(app, ["--home", str(other), "status", "--json"]).output)
    assert data["config"]["path"] == str(other / "config.toml")
    custom = tmp_path / "custom.toml"
    custom.write_text((other / "config.toml").read_text())
    data = json.loads(runner.invoke(app, ["--config", str(custom), "status", "--json"]).output)
    assert data["config"]["path"] == str(custom) and data["config"]["found"]


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    assert runner.invoke(app, ["status", "--no-such-option"]).exit_code == 2
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_version_and_help(runner: CliRunner) -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("mlconnector ")
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "init" in result.output and "status" in result.output


def test_init_force_refuses_a_config_with_a_bad_value_instead_of_dropping_every_good_one(
    runner: CliRunner, home: Path
) -> None:
    home.mkdir(parents=True)
    text = '[quickbooks]\nmode = "journal"\nap_account = "Accounts Payable:Employees"\nmax_lines_per_txn = 0\n'
    (home / "config.toml").write_text(text)
    result = _init(runner, "--force")
    assert result.exit_code == 1
    assert "quickbooks.max_lines_per_txn" in result.output
    assert (home / "config.toml").read_text() == text  # nothing lost


def test_a_cp1252_console_gets_question_marks_not_a_crash(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": "cp1252", "MLCONNECTOR_HOME": str(tmp_path / "h")}
    result = subprocess.run([sys.executable, "-m", "mlconnector", "demo"], capture_output=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr.decode("cp1252", "replace")
    assert b"Posted to QuickBooks" in result.stdout


def test_reading_commands_never_create_a_state_file(runner: CliRunner, home: Path) -> None:
    result = runner.invoke(app, ["map", "list"])
    assert result.exit_code == 1 and "run mlconnector init first" in result.output
    assert not (home / "state.db").exists()


def test_a_damaged_state_file_is_one_line_that_says_not_to_delete_it(runner: CliRunner, home: Path) -> None:
    assert _init(runner).exit_code == 0
    (home / "state.db").write_bytes(b"garbage" * 1000)
    for name in ("state.db-wal", "state.db-shm"):
        (home / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["map", "list"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "do not delete it" in result.output


def test_init_in_check_mode_needs_the_bank_account_and_names_the_option(runner: CliRunner, home: Path) -> None:
    refused = _init(runner, "--mode", "check")
    assert refused.exit_code == 1 and not (home / "config.toml").exists()
    assert "quickbooks.check_account" in refused.output and "--check-account" in refused.output
    done = _init(runner, "--mode", "check", "--check-account", "Checking")
    assert done.exit_code == 0, done.output
    config = (home / "config.toml").read_text()
    assert 'mode = "check"' in config and 'check_account = "Checking"' in config
