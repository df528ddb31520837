"""Network failures say what happened, name the host, fail fast where retrying cannot help (#14, point 6).

Every case runs over loopback: a closed port for "connection refused", small local servers that hang,
speak TLS with an untrusted certificate or answer like some other web server, and a patched
``socket.getaddrinfo`` for names (``.invalid`` and ``.test`` are reserved, so nothing real is hit).
Waits between tries go through a fake clock; only the time-limit test waits for real (0.2 s twice).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.exceptions
from typer.testing import CliRunner

from mlconnector import errors
from mlconnector.cli import app
from mlconnector.config import DEFAULT_EXPENSIFY_URL
from mlconnector.expensify import jobs
from mlconnector.expensify.client import (
    ExpensifyClient,
    RateLimiter,
    RetryPolicy,
    map_requests_error,
)
from mlconnector.expensify.template import export_template
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports
from tests.sim_helpers import FakeClock

SECRET = "net-secret-5150"
PATH = "/Integration-Server/ExpensifyIntegrations"
NETWORK_HINT = "check your internet connection and expensify.url in config.toml (MLCONNECTOR_HOME/config.toml)"
DNS_HINT = ("check the spelling of expensify.url in config.toml (MLCONNECTOR_HOME/config.toml), and your internet"
            " connection")
URL_HINT = ("check expensify.url in config.toml; it should be"
            " https://integrations.expensify.com/Integration-Server/ExpensifyIntegrations")
RAW_FRAGMENTS = ("Errno", "ConnectionPool", "Max retries", "Caused by", "object at 0x", "urllib3", "getaddrinfo")
NGINX_404 = (b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1>"
             b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")

# A self-signed certificate for 127.0.0.1 (valid to 2126) that no trust store knows: a TLS failure on loopback.
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvRv3A6xZ6mlGVW7j
pONXRewmOTDnS0I1RMmpOS9TFHmhRANCAARsqba6lrE12DygUIN6v4xgcS5QXS+a
g+WgrMVPkv8Zl0RfquMAtz0lvsUduY6GDlnav6fZ7wejjPYt0Pw6Oi9J
-----END PRIVATE KEY-----
"""
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIBxTCCAWugAwIBAgIUfZd9vkZtebenJ042WL4A5RcZQ90wCgYIKoZIzj0EAwIw
KTEnMCUGA1UEAwwebWwtY29ubmVjdG9yIHRlc3QsIG5vdCB0cnVzdGVkMCAXDTI2
MTEyOTE3MTIwN1oYDzIxMjYxMTA1MTcxMjA3WjApMScwJQYDVQQDDB5tbC1jb25u
ZWN0b3IgdGVzdCwgbm90IHRydXN0ZWQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARsqba6lrE12DygUIN6v4xgcS5QXS+ag+WgrMVPkv8Zl0RfquMAtz0lvsUduY6G
Dlnav6fZ7wejjPYt0Pw6Oi9Jo28wbTAdBgNVHQ4EFgQUSTH3AaZZ/DEbhBHuI+tx
/oGY8YYwHwYDVR0jBBgwFoAUSTH3AaZZ/DEbhBHuI+tx/oGY8YYwDwYDVR0TAQH/
BAUwAwEB/zAaBgNVHREEEzARhwR/AAABgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
SAAwRQIhAKUxGpDHpq5p+PyT9Q1d7AHVMjSqOdtyWnJ/FY/S9W5sAiAVlsYUhQpS
sbHhLa/qoPNj8f5EAo1KDLONr1z5u5NzEw==
-----END CERTIFICATE-----
"""


# ---------------------------------------------------------------------------------- helpers


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def make(url: str, clock: FakeClock, *, announce: list[str] | None = None, rand: float = 0.5,
         **options: Any) -> ExpensifyClient:
    """A client with the production retry policy unless told otherwise; every wait goes through ``clock``."""
    on_retry: Callable[[str], None] | None = announce.append if announce is not None else None
    return ExpensifyClient("aa_user", SECRET, url, limiter=RateLimiter(clock=clock, sleep=clock.sleep),
                           sleep=clock.sleep, clock=clock, rand=lambda: rand, on_retry=on_retry, **options)


def fail(client: ExpensifyClient) -> errors.ExpensifyError:
    with pytest.raises(errors.ExpensifyError) as info:
        client.get(jobs.policy_list_job())
    return info.value


def assert_plain(error: errors.ExpensifyError, caplog: pytest.LogCaptureFixture | None = None) -> None:
    """One line of words: no secret, no Python or urllib3 internals."""
    text = f"{error} {error.hint}"
    assert "\n" not in text and SECRET not in text
    assert not [fragment for fragment in RAW_FRAGMENTS if fragment in str(error)]
    if caplog is not None:
        assert SECRET not in caplog.text


class FakeDns:
    """``socket.getaddrinfo`` for test names: some fail (with an errno), some resolve to loopback."""

    def __init__(self, real: Callable[..., Any], failing: dict[str, int], loopback: set[str]) -> None:
        self.real, self.failing, self.loopback = real, failing, loopback
        self.asked: list[str] = []

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in self.failing:
            self.asked.append(name)
            raise socket.gaierror(self.failing[name], "Name or service not known")
        if name in self.loopback:
            self.asked.append(name)
            return self.real("127.0.0.1", port, *args, **kwargs)
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo, {"integrations.expensify.invalid": socket.EAI_NONAME,
                                        "flaky.example.test": socket.EAI_AGAIN},
                   {"integrations.example.test"})
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@contextmanager
def answering(status: int, content_type: str, body: bytes) -> Iterator[tuple[str, list[str]]]:
    """A local web server that answers every POST alike (some other web server); yields its URL and the paths."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{PATH}", paths
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def listening(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback listener whose accepted connections go to ``serve``; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)
            try:
                serve(conn)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()


# ------------------------------------------------------------------------- connection refused


def test_refused_on_a_loopback_port_fails_at_once_with_one_sentence_naming_host_and_port(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    clock, port = FakeClock(), closed_port()
    announced: list[str] = []
    error = fail(make(f"http://127.0.0.1:{port}{PATH}", clock, announce=announced))
    assert str(error) == f"could not connect to 127.0.0.1:{port}: connection refused"
    assert error.hint == NETWORK_HINT
    assert isinstance(error, errors.ExpensifyConnectionError) and error.reason == "connection refused"
    assert clock.slept == [] and announced == []  # retrying a closed local port cannot help
    assert_plain(error, caplog)


def test_refused_by_a_named_host_gets_4_tries_within_10_s_and_each_wait_is_announced(dns: FakeDns) -> None:
    clock, port = FakeClock(), closed_port()
    announced: list[str] = []
    error = fail(make(f"http://integrations.example.test:{port}{PATH}", clock, announce=announced, rand=1.0))
    assert announced == [
        "Expensify did not answer (connection refused); trying again in 2 s (2 of 4)",
        "Expensify did not answer (connection refused); trying again in 4 s (3 of 4)",
        "Expensify did not answer (connection refused); trying again in 4 s (4 of 4)",
    ]
    assert clock.slept == [2.0, 4.0, 4.0] and sum(clock.slept) <= 10.0  # rand=1.0: the longest waits there are
    assert str(error) == f"could not connect to integrations.example.test:{port}: connection refused (after 4 tries)"
    assert error.hint == NETWORK_HINT
    assert dns.asked == ["integrations.example.test"] * 4


def test_without_a_callback_each_wait_is_logged_at_warning(dns: FakeDns, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="mlconnector.expensify")
    clock, port = FakeClock(), closed_port()
    fail(make(f"http://integrations.example.test:{port}{PATH}", clock))
    warnings = [r.getMessage() for r in caplog.records if r.name == "mlconnector.expensify" and r.levelname == "WARNING"]
    assert warnings == [
        "Expensify did not answer (connection refused); trying again in 1.5 s (2 of 4)",
        "Expensify did not answer (connection refused); trying again in 3 s (3 of 4)",
        "Expensify did not answer (connection refused); trying again in 3 s (4 of 4)",
    ]


def test_the_connection_budget_of_the_default_policy_is_2_4_4_seconds() -> None:
    policy = RetryPolicy()
    assert policy.connect_waits() == (2.0, 4.0, 4.0) and policy.tries(connection=True) == 4
    assert policy.tries() == 5  # 5xx and 429 keep the full policy
    assert [policy.delay(n, lambda: 1.0, connection=True) for n in (1, 2, 3)] == [2.0, 4.0, 4.0]
    assert RetryPolicy(max_tries=2).connect_waits() == (2.0,)


# ------------------------------------------------------------------------------------- DNS


def test_an_unknown_host_fails_at_once_and_names_the_host(dns: FakeDns, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    clock = FakeClock()
    announced: list[str] = []
    error = fail(make(f"https://integrations.expensify.invalid{PATH}", clock, announce=announced))
    assert str(error) == "the name integrations.expensify.invalid could not be resolved (DNS)"
    assert error.hint == DNS_HINT
    assert dns.asked == ["integrations.expensify.invalid"] and clock.slept == [] and announced == []
    assert_plain(error, caplog)


def test_a_temporary_dns_failure_is_retried_within_the_connection_budget(dns: FakeDns) -> None:
    clock = FakeClock()
    announced: list[str] = []
    error = fail(make(f"https://flaky.example.test{PATH}", clock, announce=announced))
    assert announced[0] == "Expensify did not answer (the name could not be resolved); trying again in 1.5 s (2 of 4)"
    assert len(announced) == 3 and sum(clock.slept) <= 10.0
    assert str(error) == "the name flaky.example.test could not be resolved (DNS) (after 4 tries)"
    assert error.hint == DNS_HINT


# -------------------------------------------------------------------------------------- TLS


def test_an_untrusted_tls_certificate_fails_at_once_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text(TEST_KEY)
    (tmp_path / "cert.pem").write_text(TEST_CERT)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    def handshake(conn: socket.socket) -> None:
        conn.settimeout(5)
        context.wrap_socket(conn, server_side=True).close()

    clock = FakeClock()
    announced: list[str] = []
    with listening(handshake) as port:
        error = fail(make(f"https://127.0.0.1:{port}{PATH}", clock, announce=announced))
    assert str(error) == f"the TLS certificate of 127.0.0.1:{port} could not be verified"
    assert error.hint is not None and "expensify.url" in error.hint and "proxy or antivirus" in error.hint
    assert clock.slept == [] and announced == []
    assert_plain(error)


# ---------------------------------------------------------------------------------- timeouts


def test_a_server_that_never_answers_is_retried_then_named_with_the_time_limit() -> None:
    clock = FakeClock()
    announced: list[str] = []
    with listening(lambda conn: None) as port:  # accepts, reads nothing, answers nothing
        client = make(f"http://127.0.0.1:{port}{PATH}", clock, announce=announced, timeout=(2.0, 0.2),
                      retry=RetryPolicy(max_tries=2))
        error = fail(client)
    assert announced == [f"127.0.0.1:{port} did not answer within 0.2 s; trying again in 1.5 s (2 of 2)"]
    assert str(error) == f"127.0.0.1:{port} did not answer within 0.2 s (after 2 tries)"
    assert error.hint == "Expensify may be busy; run mlconnector pull again later"
    assert_plain(error)


def test_a_connect_timeout_says_no_connection_within_the_limit_and_names_the_host() -> None:
    # What requests raises when the TCP handshake times out (built as urllib3 builds it).
    reason = urllib3.exceptions.ConnectTimeoutError(
        None, "Connection to integrations.expensify.com timed out. (connect timeout=15.0)")
    raw = requests.ConnectTimeout(urllib3.exceptions.MaxRetryError(None, PATH, reason))  # type: ignore[arg-type]
    error = map_requests_error(raw, DEFAULT_EXPENSIFY_URL, (15.0, 240.0))
    assert isinstance(error, errors.ExpensifyConnectionError) and error.retry_soon
    assert str(error) == "could not connect to integrations.expensify.com: no answer within 15 s"
    assert error.hint == NETWORK_HINT
    assert_plain(error)


# -------------------------------------------------------------------- retries are announced


@pytest.mark.parametrize(("kind", "first"), [
    ("http_503", ("Expensify failed with an HTML error page (HTTP 503: 503 Service Unavailable); trying again in"
                  " 1.5 s (2 of 5)")),
    ("rate_limit_http", "Expensify rate-limited the request (HTTP 429); trying again in 10 s (2 of 5)"),
    ("drop", "Expensify did not answer (connection closed); trying again in 1.5 s (2 of 4)"),
])
def test_transient_failures_are_still_retried_and_each_wait_is_announced(kind: str, first: str) -> None:
    clock = FakeClock()
    announced: list[str] = []
    with ExpensifySimulator(demo_reports(1), clock=clock, partner_user_secret=SECRET) as sim:
        sim.fail_next(kind, times=2)
        client = ExpensifyClient(sim.partner_user_id, SECRET, sim.url, sleep=clock.sleep, clock=clock,
                                 rand=lambda: 0.5, on_retry=announced.append)
        assert client.export(jobs.export_job(report_ids=["R1"]), export_template()).endswith(".json")
        assert len(sim.requests) == 3
    assert announced[0] == first and len(announced) == 2 and SECRET not in " ".join(announced)


# ---------------------------------------------------------------------------- wrong endpoint


@pytest.mark.parametrize(("status", "ctype", "body", "kind"), [
    (404, "text/html", NGINX_404, "a web page"),
    (400, "text/html; charset=utf-8", b"<!DOCTYPE html><html><body><h1>Bad Request</h1></body></html>", "a web page"),
    (405, "text/html", b"<html><head><title>405 Method Not Allowed</title></head></html>", "a web page"),
    (200, "text/html", b"<!doctype html><html><head><title>Welcome</title></head><body>Hi</body></html>",
     "a web page"),
    (400, "text/plain", b"Bad Request", "plain text"),
    (404, "text/plain", b"", "an empty answer"),
    (405, "application/json", b'{"error":"method not allowed"}', "JSON that is not Expensify's"),
], ids=["404-page", "400-page", "405-page", "200-page", "400-text", "404-empty", "405-json"])
def test_an_answer_no_integration_server_gives_points_at_expensify_url_and_is_not_retried(
    status: int, ctype: str, body: bytes, kind: str
) -> None:
    clock = FakeClock()
    announced: list[str] = []
    with answering(status, ctype, body) as (url, paths):
        error = fail(make(url, clock, announce=announced))
        port = url.split(":")[2].split("/")[0]
    assert type(error).__name__ == "ExpensifyEndpointError" and error.response_code == status
    assert str(error) == f"127.0.0.1:{port} answered HTTP {status} with {kind}, not the Expensify Integration Server"
    assert error.hint == URL_HINT
    assert paths == [PATH] and announced == []
    assert_plain(error)


def test_the_url_in_the_hint_is_the_configured_default() -> None:
    assert URL_HINT.endswith(DEFAULT_EXPENSIFY_URL)
    with answering(404, "text/html", NGINX_404) as (url, _):
        assert fail(make(url, FakeClock())).hint == URL_HINT


# ------------------------------------------------------------------------------------- CLI


def _configure(home: Path, url: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[expensify]\npartner_user_id = "aa_user"\nurl = "{url}"\n'
                                      'start_date = "2026-01-01"\n')
    return {"MLCONNECTOR_EXPENSIFY_SECRET": SECRET}


def test_pull_against_a_closed_port_exits_3_at_once_with_one_line(home: Path) -> None:
    port = closed_port()
    result = CliRunner().invoke(app, ["pull"], env=_configure(home, f"http://127.0.0.1:{port}{PATH}"))
    assert result.exit_code == 3
    assert result.output == f"Error: could not connect to 127.0.0.1:{port}: connection refused — {NETWORK_HINT}\n"


def test_pull_against_an_unknown_host_exits_3_at_once_with_one_line(home: Path, dns: FakeDns) -> None:
    result = CliRunner().invoke(app, ["pull"], env=_configure(home, f"https://integrations.expensify.invalid{PATH}"))
    assert result.exit_code == 3
    assert result.output == (
        f"Error: the name integrations.expensify.invalid could not be resolved (DNS) — {DNS_HINT}\n")
    assert dns.asked == ["integrations.expensify.invalid"]


def test_pull_against_another_web_server_exits_3_and_points_at_expensify_url(home: Path) -> None:
    with answering(404, "text/html", NGINX_404) as (url, paths):
        result = CliRunner().invoke(app, ["pull"], env=_configure(home, url))
        port = url.split(":")[2].split("/")[0]
    assert result.exit_code == 3
    assert result.output == (f"Error: 127.0.0.1:{port} answered HTTP 404 with a web page, not the Expensify"
                             f" Integration Server — {URL_HINT}\n")
    assert len(paths) == 1
