"""`mlconnector check` (#14): one line per check with its fix, exit 1 when any fails, --json for scripts."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlconnector.cli import app
from mlconnector.cli.check import marks
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.soap.server import make_wsgi_app, running_server
from mlconnector.soap.session import QbwcService
from mlconnector.soap.work import PostingWork
from mlconnector.store import Store

from .qbwc_support import settings

ORDER = ["configuration", "Expensify credentials", "state file", "serve address", "certificate", "Web Connector",
         "blocked work"]


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator() as simulator:
        yield simulator


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _set_port(home: Path, port: int) -> None:
    config = home / "config.toml"
    config.write_text(re.sub(r"(?m)^port = \d+$", f"port = {port}", config.read_text()))


@pytest.fixture
def runner(home: Path, sim: ExpensifySimulator) -> CliRunner:
    # The secret stays in the environment, as init --non-interactive leaves it (never copied to config.toml).
    runner = CliRunner(env={"MLCONNECTOR_EXPENSIFY_SECRET": sim.partner_user_secret})
    result = runner.invoke(
        app, ["init", "--non-interactive", "--expensify-user", sim.partner_user_id, "--expensify-url", sim.url],
        env={"MLCONNECTOR_QBWC_PASSWORD": "pw", "MLCONNECTOR_EXPENSIFY_SECRET": sim.partner_user_secret})
    assert result.exit_code == 0, result.output
    _set_port(home, _free_port())
    return runner


def _lines(result: Result) -> dict[str, str]:
    """Each check's line by name, with the fix line after it (if any) joined by ' | '."""
    found: dict[str, str] = {}
    name = ""
    for line in result.output.splitlines():
        if line.startswith("    fix: "):
            found[name] += " | " + line.strip()
            continue
        for candidate in ORDER:
            if line[2:].startswith(candidate + ":"):
                name = candidate
                found[name] = line
    return found


def test_a_fresh_home_passes_every_check_but_the_web_connector_that_never_called(
    runner: CliRunner, sim: ExpensifySimulator
) -> None:
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1, result.output
    lines = _lines(result)
    assert list(lines) == ORDER, result.output
    for name in ("configuration", "Expensify credentials", "state file", "serve address", "blocked work"):
        assert lines[name].startswith(f"✓ {name}: "), lines[name]
    assert lines["certificate"].startswith("- certificate: skipped: ")
    assert lines["Web Connector"].startswith("✗ Web Connector: it has never called ml-connector | fix: ")
    assert "mlconnector qwc" in lines["Web Connector"] and "Update Selected" in lines["Web Connector"]
    assert sim.partner_user_secret not in result.output
    assert result.output.rstrip().endswith("1 check failed.")


def test_a_wrong_expensify_secret_fails_the_credentials_check_with_the_fix(runner: CliRunner) -> None:
    result = runner.invoke(app, ["check"], env={"MLCONNECTOR_EXPENSIFY_SECRET": "not-the-secret"})
    assert result.exit_code == 1, result.output
    line = _lines(result)["Expensify credentials"]
    assert line.startswith("✗ Expensify credentials: ") and " | fix: " in line, line
    assert "not-the-secret" not in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_read_only_state_file_fails_and_is_left_as_it_was(runner: CliRunner, home: Path) -> None:
    state = home / "state.db"
    state.chmod(stat.S_IRUSR)
    before = state.read_bytes()
    try:
        result = runner.invoke(app, ["check"])
    finally:
        state.chmod(stat.S_IRUSR | stat.S_IWUSR)
    line = _lines(result)["state file"]
    assert line.startswith("✗ state file: ") and "read-only" in line and " | fix: " in line, result.output
    assert state.read_bytes() == before and result.exit_code == 1


def test_check_never_creates_the_state_file(runner: CliRunner, home: Path) -> None:
    (home / "state.db").unlink()
    result = runner.invoke(app, ["check"])
    assert _lines(result)["state file"].startswith("✗ state file: no state file at ")
    assert "mlconnector init" in _lines(result)["state file"]
    assert not (home / "state.db").exists()
    assert _lines(result)["Web Connector"].startswith("- Web Connector: skipped: ")


def test_a_port_taken_by_another_program_fails_the_address_check(runner: CliRunner, home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _set_port(home, port)
        result = runner.invoke(app, ["check"])
    line = _lines(result)["serve address"]
    assert line.startswith(f"✗ serve address: 127.0.0.1:{port} is in use by another program"), line
    assert "choose another [qbwc] port" in line


def test_a_port_served_by_ml_connector_passes_the_address_check(runner: CliRunner, home: Path) -> None:
    store = Store.memory()
    try:
        service = QbwcService(store, PostingWork(store, _config(home)), settings())
        with running_server(make_wsgi_app(lambda: service)) as srv:
            _set_port(home, int(srv.base_url.rsplit(":", 1)[1]))
            result = runner.invoke(app, ["check"])
    finally:
        store.close()
    assert _lines(result)["serve address"].startswith("✓ serve address: "), result.output
    assert "already served by ml-connector" in _lines(result)["serve address"]


def _config(home: Path):  # type: ignore[no-untyped-def]
    from mlconnector.config import load_config

    return load_config(home / "config.toml")


def test_a_recent_web_connector_call_and_blocked_work_are_reported(runner: CliRunner, home: Path) -> None:
    store = Store.open(home / "state.db")
    try:
        store.set_setting("qbwc.last_contact", (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3))
                          .isoformat(timespec="milliseconds"))
    finally:
        store.close()
    result = runner.invoke(app, ["check"])
    assert _lines(result)["Web Connector"].startswith("✓ Web Connector: last called 3 min"), result.output
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("All checks passed.")


def test_json_has_ok_and_one_entry_per_check_in_order_without_secrets(
    runner: CliRunner, sim: ExpensifySimulator
) -> None:
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert [c["name"] for c in data["checks"]] == ORDER
    for check in data["checks"]:
        assert set(check) == {"name", "ok", "detail", "fix", "skipped"}
    web = data["checks"][5]
    assert (web["ok"], web["skipped"], web["detail"]) == (False, False, "it has never called ml-connector")
    assert data["checks"][4]["skipped"] is True
    assert sim.partner_user_secret not in result.output


def test_through_a_pipe_every_fix_stays_whole_on_one_line(runner: CliRunner, home: Path) -> None:
    (home / "state.db").unlink()
    (home / "config.toml").write_text("[qbwc]\nport = 99999999\nrun_every_minutes = -1\n")
    result = runner.invoke(app, ["check"], terminal_width=40)
    lines = result.output.splitlines()
    fixes = [line for line in lines if line.startswith("    fix: ")]
    assert len(lines) == len(ORDER) + len(fixes) + 1, result.output  # nothing wrapped onto a line of its own
    assert fixes[0].endswith("config.toml: each problem names its key and what to put there"), result.output
    assert "qbwc.port" in _lines(result)["configuration"] and "qbwc.run_every_minutes" in _lines(result)["configuration"]
    assert _lines(result)["Expensify credentials"].startswith("- Expensify credentials: skipped: ")


@pytest.mark.parametrize("encoding,expected", [("utf-8", ("✓", "✗", "-")), ("cp1252", ("OK", "FAIL", "SKIP")),
                                               ("ascii", ("OK", "FAIL", "SKIP"))])
def test_marks_fall_back_to_words_where_the_stream_cannot_show_them(
    encoding: str, expected: tuple[str, str, str]
) -> None:
    assert marks(encoding) == expected
