"""Slow clients cannot stall the endpoint: a request deadline, a per-address cap, and prompt real calls.

Slow connections come from other loopback source addresses (127.0.0.2 and up; Linux routes all of
127/8 to lo), so the per-address cap and the deadline can be tested apart.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.soap.server import (
    ConnectionLimits,
    RunningServer,
    make_wsgi_app,
    running_server,
)
from mlconnector.soap.session import QbwcService
from mlconnector.store import Store

from .qbwc_support import PASSWORD, USER, ListWork, settings

pytestmark = pytest.mark.slow

PARTIAL_POST = b"POST /qbwc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
BILL = '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError"/></QBXML>'


def _can_bind(address: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


needs_loopback_range = pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="needs 127.0.0.2 (Linux loopback)")


@pytest.fixture
def work() -> ListWork:
    return ListWork([BILL])


Serve = Callable[..., RunningServer]


@pytest.fixture
def serve(tmp_path: Path, work: ListWork) -> Iterator[Serve]:
    """``serve(**options)`` starts the real server on 127.0.0.1 (stopped at the end of the test)."""
    store = Store.open(tmp_path / "state.db")
    app = make_wsgi_app(lambda: QbwcService(store, work, settings()))
    with ExitStack() as stack:
        yield lambda **options: stack.enter_context(running_server(app, **options))
    store.close()


def connect(srv: RunningServer, source: str = "127.0.0.1") -> socket.socket:
    port = int(srv.base_url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.settimeout(2.0)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def is_open(sock: socket.socket) -> bool:
    """True while the server has neither closed nor reset the connection (nothing is read)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(2.0)


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte every 0.1 s), None if it does not."""
    start = time.monotonic()
    sock.settimeout(0.1)
    for n in range(int(seconds / 0.1) + 1):
        try:
            if n < len(trickle):
                sock.send(trickle[n:n + 1])
            if sock.recv(4096) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:  # reset by the server
            return time.monotonic() - start
    return None


def slow_clients(srv: RunningServer, count: int) -> list[socket.socket]:
    """``count`` connections from 127.0.0.10 and up (8 per address, the cap), each a partial POST."""
    socks = [connect(srv, f"127.0.0.{10 + i // 8}") for i in range(count)]
    for sock in socks:
        sock.send(PARTIAL_POST[:1])
    return socks


@needs_loopback_range
def test_a_real_call_is_answered_within_a_second_while_50_slow_clients_trickle(serve: Serve) -> None:
    srv = serve()
    wc = WebConnector(srv.soap_url, USER, PASSWORD, timeout=5)
    assert wc.server_version()  # the first call builds the service
    socks = slow_clients(srv, 50)
    try:
        for n in range(1, 4):  # every slow client trickles a few more bytes
            time.sleep(0.1)
            for sock in socks:
                sock.send(PARTIAL_POST[n:n + 1])
        start = time.monotonic()
        assert wc.server_version()
        elapsed = time.monotonic() - start
        assert elapsed < 1.0, f"serverVersion took {elapsed:.2f} s with 50 slow clients"
        assert all(is_open(sock) for sock in socks)  # still within their deadline, and under the cap
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize("first", [
    PARTIAL_POST,  # headers that never end
    PARTIAL_POST + b"Content-Length: 400\r\n\r\n<soap:Envelope",  # a body far below min_body_rate
], ids=["headers", "body"])
def test_a_client_slower_than_the_deadline_is_dropped_though_it_keeps_sending(serve: Serve, first: bytes) -> None:
    srv = serve(limits=ConnectionLimits(request_timeout=0.5, min_body_rate=1000))
    with connect(srv) as sock:
        sock.send(first)
        # a byte every 0.1 s: cheroot's per-read socket timeout alone would never fire
        closed_after = closed_within(sock, 3.0, trickle=b"x" * 30)
    assert closed_after is not None and closed_after < 0.5 + 1.0


def test_an_idle_connection_is_dropped_at_the_deadline(serve: Serve) -> None:
    srv = serve(limits=ConnectionLimits(request_timeout=0.3))
    with connect(srv) as sock:
        closed_after = closed_within(sock, 3.0)
    assert closed_after is not None and closed_after < 0.3 + 1.0


@needs_loopback_range
def test_connections_over_the_per_address_cap_are_closed_at_once(serve: Serve) -> None:
    srv = serve(limits=ConnectionLimits(per_address=3))
    held = [connect(srv, "127.0.0.20") for _ in range(3)]
    try:
        with connect(srv, "127.0.0.20") as over:
            closed_after = closed_within(over, 1.0)
        assert closed_after is not None and closed_after < 0.5
        assert all(is_open(sock) for sock in held)
        with connect(srv, "127.0.0.21") as elsewhere:  # another address has its own allowance
            assert closed_within(elsewhere, 0.3) is None
        held.pop().close()  # a slot frees up once the server sees the close
        time.sleep(0.2)
        with connect(srv, "127.0.0.20") as again:
            again.sendall(b"GET /support HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert again.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n", b"413"),
    (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"501"),
    (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
    (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY", b"400"),
    (b"GET /support HTTP/1.1\r\nX-Big: " + b"a" * 70_000, b"413"),
], ids=["bad-length", "too-long", "unknown-coding", "bad-chunk-size", "bad-chunk-end", "huge-headers"])
def test_a_malformed_request_is_answered_at_once_not_waited_on(
        serve: Serve, request_bytes: bytes, status: bytes) -> None:
    srv = serve()
    start = time.monotonic()
    with connect(srv) as sock:
        sock.sendall(request_bytes)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 " + status) and time.monotonic() - start < 1.0


def test_refusals_are_logged_with_the_address_and_rate_limited(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    srv = serve(limits=ConnectionLimits(per_address=1))
    with connect(srv) as held:
        for _ in range(30):
            with connect(srv) as over:
                assert closed_within(over, 1.0) is not None
        assert is_open(held)
    refusals = [r for r in caplog.records if r.levelname == "WARNING" and "refused a connection" in r.message]
    assert 1 <= len(refusals) <= 20
    assert refusals[0].message == ("refused a connection from 127.0.0.1: 1 connections from this address "
                                   "are already open")


def test_every_kind_of_closed_connection_gives_its_slot_back(serve: Serve) -> None:
    srv = serve(limits=ConnectionLimits(per_address=2, request_timeout=0.3))
    with requests.Session() as session:  # kept alive between calls
        for _ in range(5):
            assert session.get(srv.base_url + "/support", timeout=5).status_code == 200
    for request_bytes in [b"POST /qbwc HTTP/1.1\r\nContent-Length: 9\r\n\r\nab",  # client leaves mid-body
                          b"POST /qbwc HTTP/1.1\r\nContent-Length: zz\r\n\r\n"]:  # refused by cheroot
        for _ in range(3):
            with connect(srv) as sock:
                sock.sendall(request_bytes)
    slow = [connect(srv), connect(srv)]
    assert all(closed_within(sock, 2.0, trickle=b"GET / HTTP/1.1") is not None for sock in slow)  # dropped
    for sock in slow:
        sock.close()
    time.sleep(0.2)
    fresh = [connect(srv), connect(srv)]
    try:
        for sock in fresh:
            sock.sendall(b"GET /support HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in fresh:
            sock.close()


def test_past_the_global_limits_a_connection_is_closed(serve: Serve) -> None:
    srv = serve(limits=ConnectionLimits(max_pending=2, max_buffered_bytes=1000))
    with connect(srv) as first, connect(srv) as second, connect(srv) as third:
        assert closed_within(third, 1.0) is not None  # two requests are already arriving
        assert is_open(first) and is_open(second)
    with pytest.raises(requests.ConnectionError):  # its body alone is over the memory budget
        requests.post(srv.soap_url, data=b"x" * 5000, timeout=5)
    assert requests.get(srv.base_url + "/support", timeout=5).status_code == 200


def test_a_full_size_request_is_unaffected(serve: Serve, work: ListWork) -> None:
    srv = serve()
    wc = WebConnector(srv.soap_url, USER, PASSWORD, timeout=10)
    ticket = wc.authenticate()[0]
    assert wc.send_request_xml(ticket) == BILL
    big = "<QBXML><QBXMLMsgsRs>" + "<x>" + "y" * (9 * 1024 * 1024) + "</x></QBXMLMsgsRs></QBXML>"
    assert wc.receive_response_xml(ticket, big) == 100
    assert work.responses[-1][1] == big


def test_expect_100_continue_is_answered_once_and_the_call_served(serve: Serve) -> None:
    srv = serve()
    body = WebConnector.envelope("serverVersion", [])
    head = (b"POST /qbwc HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml; charset=utf-8\r\nExpect: 100-continue\r\n"
            b'SOAPAction: "http://developer.intuit.com/serverVersion"\r\nConnection: close\r\n'
            b"Content-Length: %d\r\n\r\n" % len(body))
    with connect(srv) as sock:
        sock.sendall(head)
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"100 Continue" not in answer
    assert b"serverVersionResult" in answer


def test_chunked_and_pipelined_requests_are_served(serve: Serve) -> None:
    srv = serve()
    body = WebConnector.envelope("serverVersion", [])

    def chunks() -> Iterator[bytes]:
        yield body[:50]
        yield body[50:]

    response = requests.post(srv.soap_url, data=chunks(), timeout=5,
                             headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"x"'})
    assert response.status_code == 200 and b"serverVersionResult" in response.content
    with connect(srv) as sock:
        sock.sendall(b"GET /support HTTP/1.1\r\nHost: x\r\n\r\n"  # two requests in one write
                     b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and b"HTTP/1.1 404 " in answer


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@needs_loopback_range
def test_silent_tls_clients_do_not_stall_the_handshakes_of_others(
        serve: Serve, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    srv = serve(certfile=str(cert), keyfile=str(key), limits=ConnectionLimits(request_timeout=0.8))
    wc = WebConnector(srv.soap_url, USER, PASSWORD, verify=str(cert), timeout=5)
    silent = [connect(srv, f"127.0.0.{30 + i // 8}") for i in range(20)]  # never start the handshake
    try:
        start = time.monotonic()
        assert wc.server_version()
        assert time.monotonic() - start < 1.0
        assert closed_within(silent[0], 3.0) is not None  # then dropped at the deadline
    finally:
        for sock in silent:
            sock.close()
    context = ssl.create_default_context(cafile=str(cert))
    port = int(srv.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /support HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 200 ")
