"""Benchmark: how long a real SOAP call takes while slow clients trickle requests at the server.

    python bench/slow_clients.py [--slow 50] [--calls 7] [--baseline]

Starts ``mlconnector serve``'s server on a loopback port, times a ``serverVersion`` call (the Web
Connector's first call) with no other connection open -- the floor -- then opens --slow connections that
send a partial POST one byte at a time, and times the same call again; prints both medians and their
ratio. The slow connections come from 127.0.0.2 and up (8 per address, the per-address cap), so the
deadline and the worker threads are what is measured, not the cap; a slow connection the server drops
is opened again, as an attacker would. Linux only (other 127.x source addresses).

--baseline serves with plain cheroot (8 worker threads, no gatekeeper), as before the connection
guard: there the call waits for a free worker thread, which slow clients never release.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socket  # noqa: E402

from cheroot import wsgi  # noqa: E402

from mlconnector.passwords import hash_password  # noqa: E402
from mlconnector.sandbox.webconnector import WebConnector, WebConnectorError  # noqa: E402
from mlconnector.soap.server import WsgiApp, make_wsgi_app, running_server  # noqa: E402
from mlconnector.soap.session import QbwcService, SessionSettings  # noqa: E402
from mlconnector.soap.work import make_work  # noqa: E402
from mlconnector.store import Store  # noqa: E402

PARTIAL_POST = b"POST /qbwc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml; charset=utf-8\r\n"
TRICKLE_EVERY = 0.5  # seconds between two bytes on one slow connection
PER_ADDRESS = 8


class Trickler:
    """Keeps ``count`` slow connections open against ``port``, each sending one byte every TRICKLE_EVERY s."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.socks: list[socket.socket | None] = [None] * count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> socket.socket | None:
        sock = socket.socket()
        sock.settimeout(1.0)
        try:
            sock.bind((f"127.0.0.{2 + i // PER_ADDRESS}", 0))
            sock.connect(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            return None
        return sock

    def start(self) -> None:
        for i in range(self.count):
            self.socks[i] = self._open(i)
        self._thread.start()

    def _run(self) -> None:
        sent = 0
        while not self._stop.wait(TRICKLE_EVERY):
            byte = PARTIAL_POST[sent % len(PARTIAL_POST):][:1]
            sent += 1
            for i, sock in enumerate(self.socks):
                try:
                    if sock is None:
                        raise OSError
                    sock.send(byte)
                except OSError:
                    if sock is not None:
                        sock.close()
                        self.reopened += 1
                    self.socks[i] = self._open(i)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            if sock is not None:
                sock.close()


def _time_calls(url: str, calls: int) -> list[float]:
    wc = WebConnector(url, "bench", "bench-password", timeout=5)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        try:
            wc.server_version()
        except WebConnectorError:
            times.append(float("inf"))  # timed out
            continue
        times.append(time.perf_counter() - start)
    return times


@contextmanager
def _baseline_server(app: WsgiApp) -> Iterator[str]:
    """The server as it was before the connection guard: plain cheroot, 8 worker threads."""
    server: Any = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)
    server.expiration_interval = 0.05
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.bind_addr[1]}/qbwc"
    finally:
        server.stop()


def _fmt(seconds: float) -> str:
    return "timed out (5 s)" if seconds == float("inf") else f"{seconds * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=50, help="slow connections to keep open")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per measurement (median)")
    parser.add_argument("--baseline", action="store_true", help="plain cheroot, without the connection guard")
    args = parser.parse_args()
    logging.getLogger("mlconnector.soap.server").setLevel(logging.ERROR)  # the drops' warnings are expected
    with tempfile.TemporaryDirectory() as tmp:
        from mlconnector.config import parse_config

        store = Store.open(Path(tmp) / "state.db")
        settings = SessionSettings(username="bench", password_hash=hash_password("bench-password"))
        app = make_wsgi_app(lambda: QbwcService(store, make_work(store, parse_config({})), settings))
        with (_baseline_server(app) if args.baseline else _guarded(app)) as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            _time_calls(url, 2)  # warm up: the first call builds the Spyne service
            floor = statistics.median(_time_calls(url, args.calls))
            trickler = Trickler(port, args.slow)
            trickler.start()
            time.sleep(2 * TRICKLE_EVERY)  # every slow connection has sent a couple of bytes
            open_now = sum(s is not None for s in trickler.socks)
            loaded = statistics.median(_time_calls(url, args.calls))
            later = float("nan")
            if not args.baseline:  # past the deadline: the server drops them, the trickler reopens them
                time.sleep(6.0)
                later = statistics.median(_time_calls(url, args.calls))
            trickler.stop()
        store.close()
    server = "plain cheroot (baseline)" if args.baseline else "ml-connector server"
    print(f"serverVersion over loopback HTTP, {server}, median of {args.calls} calls:")
    print(f"  {'no other connection open:':34}{_fmt(floor)}")
    print(f"  {f'{open_now} slow connections open:':34}{_fmt(loaded)}   ({_ratio(loaded, floor)})")
    if not args.baseline:
        print(f"  {'the same, 6 s later:':34}{_fmt(later)}   ({_ratio(later, floor)}; the server dropped "
              f"{trickler.reopened} slow connections meanwhile, reopened at once)")

def _ratio(value: float, floor: float) -> str:
    return "timed out" if value == float("inf") else f"{value / floor:.2f}x the floor"


@contextmanager
def _guarded(app: WsgiApp) -> Iterator[str]:
    with running_server(app) as srv:
        yield srv.soap_url


if __name__ == "__main__":
    main()
