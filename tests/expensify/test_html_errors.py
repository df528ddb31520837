"""An HTML error page from Expensify (or a proxy in front of it) is Expensify's failure, not ml-connector's.

A 5xx page (a load balancer's 502/503/504, Tomcat's 500 with any title) is a server error: retried
per the retry policy, then one line naming Expensify, the HTTP status and the page title, exit 3.
Tomcat's "HTTP Status 500 - JSONObject" page is the one EXPENSIFY.md (§7.2) reads as "the request
could not be read"; that reading is unverified, so it is not retried and its message names both
possibilities (a fault at Expensify, or a bug in ml-connector); it also exits 3.
"""

from __future__ import annotations

import json
import datetime as dt
import functools
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests_mock
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.errors import ExpensifyError, ExpensifyRetriableError
from mlconnector.expensify import client as client_module
from mlconnector.expensify import jobs
from mlconnector.expensify.client import (
    ExpensifyClient,
    RateLimiter,
    RetryPolicy,
    classify,
)
from mlconnector.expensify.template import export_template
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports
from tests.sim_helpers import FakeClock, make_client

JOB = jobs.export_job(report_states=["APPROVED"], start_date=dt.date(2026, 1, 1))
URL = "https://integrations.expensify.com/Integration-Server/ExpensifyIntegrations"
SECRET = "html-secret-7373"
NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
ELB_503 = b"<!DOCTYPE html><html><head><title>503 Service Temporarily Unavailable</title></head><body></body></html>"
GATEWAY_504 = b"<html><body><h1>504 Gateway Time-out</h1>The server didn't respond in time.</body></html>"
TOMCAT = ("<!doctype html><html lang=\"en\"><head><title>HTTP Status 500 {dash} {what}</title></head>"
          "<body><h1>HTTP Status 500 {dash} {what}</h1><h3>Apache Tomcat</h3></body></html>")


def _tomcat(what: str, dash: str = "-") -> bytes:
    return TOMCAT.format(what=what, dash=dash).encode()


# ------------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("status", "body", "title"),
    [
        (500, _tomcat("java.lang.NullPointerException"), "HTTP Status 500 - java.lang.NullPointerException"),
        (500, _tomcat("Internal Server Error", "&#8211;"), "HTTP Status 500 \u2013 Internal Server Error"),
        (502, NGINX_502, "502 Bad Gateway"),
        (503, ELB_503, "503 Service Temporarily Unavailable"),
        (504, GATEWAY_504, "504 Gateway Time-out"),
    ],
    ids=["tomcat-500-other-title", "tomcat-500-en-dash", "nginx-502", "elb-503", "gateway-504"],
)
def test_an_html_5xx_page_is_a_retriable_expensify_server_error(status: int, body: bytes, title: str) -> None:
    with pytest.raises(ExpensifyRetriableError) as info:
        classify(status, "text/html;charset=utf-8", body, expect="filename")
    assert str(info.value) == f"Expensify failed with an HTML error page (HTTP {status}: {title})"
    assert info.value.response_code == status
    assert info.value.hint is not None and "bug" not in info.value.hint


@pytest.mark.parametrize("what", ["JSONObject", 'JSONObject["type"] not found.', "requestJobDescription"])
def test_tomcats_unreadable_request_page_is_not_retried_and_names_both_possibilities(what: str) -> None:
    with pytest.raises(ExpensifyError) as info:
        classify(500, "text/html", _tomcat(what), expect="json")
    assert not isinstance(info.value, ExpensifyRetriableError)
    assert str(info.value) == (
        f"Expensify failed with an HTML error page (HTTP 500: HTTP Status 500 - {what}): it could not read the request")
    assert info.value.hint is not None
    assert "a fault at Expensify" in info.value.hint and "a bug in ml-connector" in info.value.hint


# ------------------------------------------------------------------ the real client, requests-mock


def _mocked_client(clock: FakeClock, max_tries: int = 4) -> ExpensifyClient:
    return ExpensifyClient(
        "aa_user", SECRET, URL, limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        retry=RetryPolicy(max_tries=max_tries, base_delay=1.0), sleep=clock.sleep, clock=clock, rand=lambda: 0.5,
    )


def test_a_load_balancer_502_is_retried_and_then_the_export_goes_through() -> None:
    clock = FakeClock()
    with requests_mock.Mocker() as mock:
        mock.post(URL, [
            {"status_code": 502, "headers": {"Content-Type": "text/html"}, "content": NGINX_502},
            {"status_code": 503, "headers": {"Content-Type": "text/html"}, "content": ELB_503},
            {"status_code": 200, "headers": {"Content-Type": "text/plain;charset=utf-8"},
             "text": "export0fd99e06-a636-4974-b6bc-3ceb12163386.csv"},
        ])
        with _mocked_client(clock) as client:
            name = client.export(JOB, export_template())
        assert name == "export0fd99e06-a636-4974-b6bc-3ceb12163386.csv"
        assert mock.call_count == 3
    assert clock.slept == [0.75, 1.5]  # the policy's backoff, as for any 5xx


def test_an_html_5xx_that_persists_gives_up_after_the_policys_tries_with_status_and_title() -> None:
    clock = FakeClock()
    with requests_mock.Mocker() as mock:
        mock.post(URL, status_code=504, headers={"Content-Type": "text/html"}, content=GATEWAY_504)
        with _mocked_client(clock, max_tries=3) as client, pytest.raises(ExpensifyRetriableError) as info:
            client.export(JOB, export_template())
        assert mock.call_count == 3
    assert str(info.value) == "Expensify failed with an HTML error page (HTTP 504: 504 Gateway Time-out) (after 3 tries)"
    assert SECRET not in str(info.value)


def test_an_html_5xx_while_downloading_is_retried_too() -> None:
    clock = FakeClock()
    body = b'{"reportID":"R1"}\n'
    with requests_mock.Mocker() as mock:
        mock.post(URL, [
            {"status_code": 502, "headers": {"Content-Type": "text/html"}, "content": NGINX_502},
            {"status_code": 200, "headers": {"Content-Type": "application/octet-stream"}, "content": body},
        ])
        buffer = io.BytesIO()
        with _mocked_client(clock) as client:
            assert client.download("export1.json", buffer) == len(body)
        assert mock.call_count == 2 and buffer.getvalue() == body


# ------------------------------------------------------------------- the real client, simulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(demo_reports(2), clock=clock, not_ready_polls=0) as s:
        yield s


def test_a_tomcat_500_with_another_title_is_retried_against_the_simulator(
    sim: ExpensifySimulator, clock: FakeClock
) -> None:
    sim.fail_next("html", message="java.lang.IllegalStateException", times=2)
    name = make_client(sim, clock).export(JOB, export_template())
    assert name.endswith(".json") and [r.status for r in sim.requests] == [500, 500, 200]


def test_the_jsonobject_page_from_the_simulator_is_not_retried(sim: ExpensifySimulator, clock: FakeClock) -> None:
    sim.fail_next("html", times=3)
    with pytest.raises(ExpensifyError, match="could not read the request") as info:
        make_client(sim, clock).export(JOB, export_template())
    assert not isinstance(info.value, ExpensifyRetriableError)
    assert len(sim.requests) == 1


# --------------------------------------------------------------------------------------- CLI


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's own client, with the default number of tries but no wait between them."""
    monkeypatch.setattr(client_module, "RetryPolicy", functools.partial(RetryPolicy, base_delay=0.0, max_delay=0.0))


@pytest.fixture
def cli_sim() -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(demo_reports(2), partner_user_secret=SECRET, not_ready_polls=0, rate_limits=()) as s:
        yield s


def _configure(home: Path, url: str, user: str = "aa_user") -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[expensify]\npartner_user_id = "{user}"\nurl = "{url}"\nstart_date = "2026-01-01"\n')
    return {"MLCONNECTOR_EXPENSIFY_SECRET": SECRET}


def test_pull_exits_3_with_one_line_naming_expensify_status_and_title_after_retrying_a_tomcat_500(
    home: Path, cli_sim: ExpensifySimulator, no_waiting: None
) -> None:
    env = _configure(home, cli_sim.url, cli_sim.partner_user_id)
    cli_sim.fail_next("html", message="java.lang.NullPointerException", times=10)
    result = CliRunner().invoke(app, ["pull"], env=env)
    assert result.exit_code == 3
    *retries, last = result.stderr.splitlines()
    assert last == (
        "Error: Expensify failed with an HTML error page (HTTP 500: HTTP Status 500 - java.lang.NullPointerException)"
        " (after 5 tries) — a server error at Expensify or at a proxy in front of it; run mlconnector pull again"
        " later")
    # Each wait was announced, one line each, before the one-line error.
    assert [r.rsplit("(", 1)[-1] for r in retries] == ["2 of 5)", "3 of 5)", "4 of 5)", "5 of 5)"]
    assert result.stdout == ""
    assert len(cli_sim.requests) == RetryPolicy().max_tries


def test_pull_exits_3_on_a_load_balancer_502_page(home: Path, no_waiting: None) -> None:
    env = _configure(home, URL)
    with requests_mock.Mocker() as mock:
        mock.post(URL, status_code=502, headers={"Content-Type": "text/html"}, content=NGINX_502)
        result = CliRunner().invoke(app, ["pull", "--json"], env=env)
        assert mock.call_count == RetryPolicy().max_tries
    assert result.exit_code == 3
    lines = [line for line in result.stderr.splitlines() if "trying again in" not in line]
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith("Error: Expensify failed with an HTML error page (HTTP 502: 502 Bad Gateway)")
    assert "bug" not in lines[0]
    # --json: a script gets JSON on stdout whatever happened.
    data = json.loads(result.stdout)
    assert data["result"] == "failed" and data["exit_code"] == 3 and data["error"] in lines[0]


def test_pull_exits_3_on_the_jsonobject_page_and_names_both_possibilities(
    home: Path, cli_sim: ExpensifySimulator
) -> None:
    env = _configure(home, cli_sim.url, cli_sim.partner_user_id)
    cli_sim.fail_next("html")
    result = CliRunner().invoke(app, ["pull"], env=env)
    assert result.exit_code == 3
    assert result.output == (
        "Error: Expensify failed with an HTML error page (HTTP 500: HTTP Status 500 - JSONObject): it could not read"
        " the request — a fault at Expensify or a bug in ml-connector; run mlconnector pull again later, and if it"
        " repeats, report it with the log file\n")
    assert len(cli_sim.requests) == 1

