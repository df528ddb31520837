"""`mlconnector qwc` (the .qwc file and the Web Connector's URL rules) and `mlconnector serve` end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.qbxml.qwc import build_qwc
from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.services.qwc import QwcUrlError, check_app_url, qwc_ids
from mlconnector.store import Store

PASSWORD = "correct horse battery"


@pytest.fixture
def runner(home: Path) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--non-interactive", "--qbwc-user", "acme-qbwc"],
                           env={"MLCONNECTOR_QBWC_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    return runner


@pytest.mark.parametrize("url,app_url,support", [
    ("https://qb.example.com/qbwc", "https://qb.example.com/qbwc", "https://qb.example.com/support"),
    ("https://qb.example.com:8443", "https://qb.example.com:8443/qbwc", "https://qb.example.com:8443/support"),
    ("http://localhost:8080/qbwc", "http://localhost:8080/qbwc", "http://localhost:8080/support"),
])
def test_app_support_is_on_the_same_host_as_the_app_url(url: str, app_url: str, support: str) -> None:
    urls = check_app_url(url)
    assert (urls.app_url, urls.support_url) == (app_url, support)


def test_plain_http_is_refused_except_for_localhost_with_the_reason_and_fix() -> None:
    with pytest.raises(QwcUrlError, match=r"not HTTPS.*QBWC1010") as info:
        check_app_url("http://qb.example.com/qbwc")
    assert "--certfile" in (info.value.hint or "")


@pytest.mark.parametrize("url,better", [("https://192.168.1.20/qbwc", "host name"),
                                        ("http://127.0.0.1:8080/qbwc", "localhost"),
                                        ("https://[::1]/qbwc", "localhost")])
def test_an_ip_address_as_host_is_refused(url: str, better: str) -> None:
    with pytest.raises(QwcUrlError, match="QBWC1001") as info:
        check_app_url(url)
    assert better in (info.value.hint or "")


def test_owner_and_file_ids_are_generated_once(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "state.db")
    first = qwc_ids(store)
    store.close()
    store = Store.open(tmp_path / "state.db")
    assert qwc_ids(store) == first
    store.close()
    owner, file_id = first
    assert owner != file_id and owner.startswith("{") and owner.endswith("}") and len(owner) == 38


def test_the_qwc_document_has_every_required_element() -> None:
    urls = check_app_url("https://qb.example.com/qbwc")
    root = etree.fromstring(build_qwc(urls, username="acme", owner_id="{O}", file_id="{F}", run_every_minutes=15))
    assert root.tag == "QBWCXML"
    values = {child.tag: child.text or "" for child in root}
    assert values["AppName"] == "ml-connector" and values["AppID"] == ""
    assert values["AppURL"] == "https://qb.example.com/qbwc"
    assert values["AppSupport"] == "https://qb.example.com/support"
    assert values["UserName"] == "acme" and values["QBType"] == "QBFS"
    assert (values["OwnerID"], values["FileID"]) == ("{O}", "{F}")
    assert root.findtext("Scheduler/RunEveryNMinutes") == "15"
    assert values["IsReadOnly"] == "false" and values["Style"] == "Document"
    assert values["AppDescription"]


def test_qwc_command_writes_the_file_with_stable_ids(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "a.qwc"
    result = runner.invoke(app, ["qwc", "--output", str(out)])
    assert result.exit_code == 0, result.output
    first = etree.parse(str(out)).getroot()
    assert first.findtext("AppURL") == "http://localhost:8080/qbwc"
    assert first.findtext("UserName") == "acme-qbwc"
    assert runner.invoke(app, ["qwc", "--url", "https://qb.example.com/qbwc", "--output", str(out)]).exit_code == 0
    second = etree.parse(str(out)).getroot()
    assert second.findtext("AppURL") == "https://qb.example.com/qbwc"
    assert (first.findtext("OwnerID"), first.findtext("FileID")) == (second.findtext("OwnerID"), second.findtext("FileID"))
    assert PASSWORD not in out.read_text() and "scrypt" not in out.read_text()


def test_qwc_command_refuses_a_plain_http_url_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "a.qwc"
    result = runner.invoke(app, ["qwc", "--url", "http://qb.example.com/qbwc", "--output", str(out)])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "QBWC1010" in result.output and "https" in result.output
    assert not out.exists()


def test_serve_refuses_a_certificate_without_a_key(runner: CliRunner, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    result = runner.invoke(app, ["serve", "--certfile", str(cert)])
    assert result.exit_code == 1 and "--certfile/--keyfile" in result.output


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
def test_serve_answers_the_web_connector_and_stops_on_sigterm(runner: CliRunner, home: Path) -> None:
    env = {**os.environ, "MLCONNECTOR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "mlconnector", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Serving the Web Connector at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split(" ")[0]
        wc = WebConnector(url, "acme-qbwc", PASSWORD)
        summary = wc.run()
        assert summary.auth_status == "none" and summary.stopped == "none"
        assert wc.authenticate(password="wrong") == ["", "nvu"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Stopped." in out


def test_serve_on_a_port_in_use_says_so_in_one_line(runner: CliRunner) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_qwc_refuses_an_output_folder_that_does_not_exist(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from mlconnector.cli import app

    target = tmp_path / "no-such-folder" / "ml.qwc"
    result = cli.invoke(app, ["qwc", "--output", str(target)])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert not target.parent.exists()
