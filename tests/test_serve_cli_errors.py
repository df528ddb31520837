"""`mlconnector serve` and `qwc` (#14): --port 0, one-line errors that name the cause, a line per session, -o."""

from __future__ import annotations

import datetime as dt
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.cli.serve import session_line
from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.soap.session import QbwcService, SessionEnd
from mlconnector.store import Store

from .qbwc_support import COMPANY, PASSWORD, USER, Clock, ListWork, settings

CLI_PASSWORD = "correct horse battery"
BILL = "<?xml version=\"1.0\"?><?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"stopOnError\"/></QBXML>"


@pytest.fixture
def runner(home: Path) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--non-interactive", "--qbwc-user", "acme-qbwc"],
                           env={"MLCONNECTOR_QBWC_PASSWORD": CLI_PASSWORD})
    assert result.exit_code == 0, result.output
    return runner


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def _make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")


# --------------------------------------------------------------------------- task 1: --port 0


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_serve_port_0_takes_a_free_port_even_when_the_configured_one_is_busy(runner: CliRunner, home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        config = home / "config.toml"
        config.write_text(config.read_text().replace("port = 8080", f"port = {busy}"))
        env = {**os.environ, "MLCONNECTOR_HOME": str(home)}
        proc = subprocess.Popen([sys.executable, "-m", "mlconnector", "serve", "--port", "0"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
    assert line.startswith("Serving the Web Connector at http://127.0.0.1:"), (line, err)
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    assert port not in (0, busy, 8080)
    assert proc.returncode == 0, err


# --------------------------------------------------------------------------- task 2: errors naming the cause


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_serve_port_out_of_range_is_a_usage_error_naming_the_range(runner: CliRunner, port: str) -> None:
    result = runner.invoke(app, ["serve", "--port", port])
    assert result.exit_code == 2, result.output
    assert "65535" in result.output and "--port" in result.output
    assert "Traceback" not in result.output


def test_serve_with_a_file_that_is_not_pem_names_the_certificate_not_the_port(
    runner: CliRunner, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("this is not a certificate\n")
    key.write_text("nor is this a key\n")
    result = runner.invoke(app, ["serve", "--port", "0", "--certfile", str(cert), "--keyfile", str(key)])
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert line.startswith(f"Error: cannot use the certificate {cert}"), line
    assert "check --certfile/--keyfile" in line
    assert "--port" not in line and "cannot listen" not in line


@needs_openssl
def test_serve_with_a_key_of_another_certificate_says_the_key_does_not_match(
    runner: CliRunner, tmp_path: Path
) -> None:
    cert, _ = _make_pair(tmp_path, "a")
    _, other_key = _make_pair(tmp_path, "b")
    result = runner.invoke(app, ["serve", "--port", "0", "--certfile", str(cert), "--keyfile", str(other_key)])
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert line.startswith(f"Error: cannot use the certificate {cert}"), line
    assert "does not match" in line and "check --certfile/--keyfile" in line


@needs_openssl
def test_serve_with_an_unreadable_key_says_so(runner: CliRunner, tmp_path: Path) -> None:
    cert, _ = _make_pair(tmp_path, "a")
    folder = tmp_path / "key-folder"
    folder.mkdir()
    result = runner.invoke(app, ["serve", "--port", "0", "--certfile", str(cert), "--keyfile", str(folder)])
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert "--keyfile" in line and "--port" not in line


def test_serve_on_an_address_not_on_this_machine_names_the_host_not_the_port(runner: CliRunner) -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a machine, so the bind fails (nothing is sent).
    result = runner.invoke(app, ["serve", "--host", "192.0.2.1", "--port", "0"])
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert "192.0.2.1" in line and "not an address of this machine" in line, line
    assert "127.0.0.1" in line and "--host" in line
    assert "another --port" not in line


def test_serve_on_a_port_in_use_suggests_another_port(runner: CliRunner) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    line = _one_error_line(result.output)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "already in use" in line
    assert "another --port" in line


# --------------------------------------------------------------------------- task 3: one line per session


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[Store]:
    s = Store.memory(now=clock)
    yield s
    s.close()


def test_close_connection_reports_the_session_once_with_user_times_and_summary(db: Store, clock: Clock) -> None:
    ended: list[SessionEnd] = []
    svc = QbwcService(db, ListWork([BILL]), settings(), now=clock, on_session_end=ended.append)
    start = clock()
    ticket = svc.authenticate(USER, PASSWORD)[0]
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == BILL
    clock.advance(minutes=3, seconds=2)
    svc.receive_response_xml(ticket, "<QBXML/>", "", "")
    summary = svc.close_connection(ticket)
    assert svc.close_connection(ticket).startswith("ml-connector: session already ended")
    assert len(ended) == 1
    end = ended[0]
    assert (end.user, end.company_file, end.started, end.ended) == (USER, COMPANY, start, clock())
    assert end.summary == summary and end.reason is None


def test_a_session_given_up_by_a_connection_error_is_reported_with_the_reason(db: Store, clock: Clock) -> None:
    ended: list[SessionEnd] = []
    svc = QbwcService(db, ListWork([BILL]), settings(), now=clock, on_session_end=ended.append)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.connection_error(ticket, "0x80040408", "Could not start QuickBooks.")
    assert len(ended) == 1 and "could not connect to QuickBooks" in (ended[0].reason or "")


def test_a_session_taken_over_by_a_new_login_is_reported_as_given_up(db: Store, clock: Clock) -> None:
    ended: list[SessionEnd] = []
    svc = QbwcService(db, ListWork([BILL, BILL]), settings(), now=clock, on_session_end=ended.append)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    clock.advance(minutes=11)
    svc.authenticate(USER, PASSWORD)
    assert len(ended) == 1 and "took over" in (ended[0].reason or "")


def test_a_failing_listener_never_breaks_the_web_connector_answer(db: Store, clock: Clock) -> None:
    def broken(end: SessionEnd) -> None:
        raise OSError("stdout is gone")

    svc = QbwcService(db, ListWork([BILL]), settings(), now=clock, on_session_end=broken)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    assert "ended with an error" not in svc.close_connection(ticket)


def test_the_session_line_has_local_time_with_zone_duration_and_counts() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    end = SessionEnd(user="mlconnector", company_file=r"C:\Books\Acme.QBW",
                     started=dt.datetime(2026, 11, 29, 13, 0, 10, tzinfo=dt.timezone.utc),
                     ended=dt.datetime(2026, 11, 29, 13, 3, 12, tzinfo=dt.timezone.utc),
                     summary="Posted 12, failed 0, in doubt 0; 1 blocked (mlconnector status)", reason=None)
    assert session_line(end, tz=plus_one) == (
        r"2026-11-29 14:03:12 +01:00  session of mlconnector (company file C:\Books\Acme.QBW): 3 min 2 s, "
        "posted 12, failed 0, in doubt 0; 1 blocked (mlconnector status)")


def test_the_session_line_of_a_given_up_session_says_why() -> None:
    end = SessionEnd(user="u", company_file="", started=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                     ended=dt.datetime(2026, 1, 1, 0, 0, 42, tzinfo=dt.timezone.utc),
                     summary="ml-connector: 1 request(s) sent, 0 answered.", reason="the Web Connector could not "
                     "connect to QuickBooks (0x80040408: no message).")
    assert session_line(end, tz=dt.timezone.utc) == (
        "2026-01-01 00:00:42 +00:00  session of u (the company file open in QuickBooks): 42 s, "
        "1 request(s) sent, 0 answered; stopped: the Web Connector could not connect to QuickBooks "
        "(0x80040408: no message)")


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_serve_prints_one_line_per_web_connector_session_without_verbose(runner: CliRunner, home: Path) -> None:
    # A posting in the queue, so the Web Connector's login opens a session.
    from mlconnector.config import load_config
    from mlconnector.sandbox.quickbooks import QuickBooksSimulator
    from mlconnector.services.queue import plan_and_queue
    from mlconnector.store.reports import save_report

    from .factories import report

    store = Store.open(home / "state.db")
    try:
        save_report(store, report())
        plan_and_queue(store, load_config(home / "config.toml"), today=dt.date(2026, 3, 31))
    finally:
        store.close()
    qb = QuickBooksSimulator.seeded()
    env = {**os.environ, "MLCONNECTOR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "mlconnector", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" at ")[1].split(" ")[0]
        summary = WebConnector(url, "acme-qbwc", CLI_PASSWORD, quickbooks=qb.process_request,
                               hcp_response=qb.hcp_response()).run()
        assert summary.auth_status not in ("none", "nvu")
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(proc.stdout.readline() if proc.stdout else ""), daemon=True).start()
        line = lines.get(timeout=20)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert " session of acme-qbwc (" in line, line
    stamp = line.split("  session of ")[0]
    dt.datetime.strptime(stamp[:19], "%Y-%m-%d %H:%M:%S")
    assert stamp[20] in "+-" and stamp[23] == ":"


# --------------------------------------------------------------------------- task 4: qwc -o


def test_qwc_takes_o_as_the_short_form_of_output(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "books.qwc"
    result = runner.invoke(app, ["qwc", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<?xml")


def test_qwc_and_serve_help_use_uppercase_metavars(runner: CliRunner) -> None:
    qwc_help = runner.invoke(app, ["qwc", "--help"], terminal_width=200).output
    assert "-o, --output FILE" in qwc_help and "--url URL" in qwc_help
    assert "mlconnector.services" not in qwc_help
    serve_help = runner.invoke(app, ["serve", "--help"], terminal_width=200).output
    for usage in ("--host HOST", "--port PORT", "--certfile FILE", "--keyfile FILE"):
        assert usage in serve_help
    assert "<" not in qwc_help + serve_help


def test_serve_uses_the_certificate_of_the_config_when_none_is_given(runner: CliRunner, home: Path,
                                                                      tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("this is not a certificate\n")
    key.write_text("nor is this a key\n")
    config = home / "config.toml"
    text = config.read_text().replace('certfile = ""', f'certfile = "{cert}"').replace('keyfile = ""', f'keyfile = "{key}"')
    config.write_text(text)
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert _one_error_line(result.output).startswith(f"Error: cannot use the certificate {cert}")
