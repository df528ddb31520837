"""``mlconnector serve``: the WSGI app (``wsgi_app``) on cheroot, behind the connection guard (``guard``).

A worker thread only ever sees a request that has fully arrived: a gatekeeper thread reads requests
(and performs TLS handshakes) without blocking and drops a client that is too slow; each client
address may hold a few connections at most (:class:`ConnectionLimits`). So clients that trickle
bytes cannot occupy the worker threads and stall the Web Connector's calls.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from cheroot import wsgi

from mlconnector import __version__
from mlconnector.soap.guard import (
    CLOSED,
    OPEN,
    Gatekeeper,
    LazyHandshakeAdapter,
    TrackedConnection,
)
from mlconnector.soap.limits import (
    LISTEN_BACKLOG,
    ConnectionLimits,
    LogBudget,
    address_key,
)
from mlconnector.soap.service import TNS
from mlconnector.soap.wsgi_app import (
    MAX_BODY_BYTES,
    SOAP_PATH,
    SUPPORT_PATH,
    WsgiApp,
    make_wsgi_app,
)

log = logging.getLogger("mlconnector.soap.server")


class GuardedServer(wsgi.Server):
    """cheroot's WSGI server behind a :class:`Gatekeeper`, with a cap on connections per address."""

    ConnectionClass = TrackedConnection

    def __init__(self, bind_addr: tuple[str, int], app: WsgiApp, *, limits: ConnectionLimits, threads: int,
                 server_name: str) -> None:
        super().__init__(bind_addr, app, numthreads=threads, server_name=server_name,
                         request_queue_size=LISTEN_BACKLOG)
        self.limits = limits
        self.notes = LogBudget()
        self._gate = Gatekeeper(self)
        self._count_lock = threading.Lock()
        self._per_address: dict[str, int] = {}

    def prepare(self) -> None:
        """Bind, start cheroot's threads, then the gatekeeper."""
        super().prepare()
        self._gate.start()

    def stop(self) -> None:
        """Stop the gatekeeper (closing the requests still arriving), then cheroot."""
        self._gate.stop()
        super().stop()

    def process_conn(self, conn: Any) -> None:
        """Where cheroot sends a new connection, or a kept-alive one with a new request: to the gatekeeper."""
        if conn.state == CLOSED:
            return
        if conn.state != OPEN and not self._admit(conn):
            return
        self._gate.add(conn)

    def dispatch(self, conn: Any) -> None:
        """Queue a connection whose request has arrived for a worker thread (cheroot's own process_conn)."""
        super().process_conn(conn)

    def release(self, conn: Any) -> None:
        """Called once when an admitted connection closes."""
        with self._count_lock:
            key, conn.address_key, conn.state = conn.address_key, None, CLOSED
            if key is not None:
                left = self._per_address.get(key, 1) - 1
                if left > 0:
                    self._per_address[key] = left
                else:
                    self._per_address.pop(key, None)

    def _admit(self, conn: Any) -> bool:
        key = address_key(conn.remote_addr)
        with self._count_lock:
            open_now = self._per_address.get(key, 0)
            if open_now < self.limits.per_address:
                self._per_address[key] = open_now + 1
                conn.address_key, conn.state = key, OPEN
                return True
        self.notes.log(logging.WARNING, "refused a connection from %s: %d connections from this address are "
                       "already open", conn.remote_addr, open_now)
        with suppress(OSError):
            conn.close()
        return False


def make_server(app: WsgiApp, host: str = "127.0.0.1", port: int = 8080, *, certfile: str | None = None,
                keyfile: str | None = None, threads: int = 8, limits: ConnectionLimits | None = None,
                ) -> GuardedServer:
    """A cheroot server for ``app`` (TLS when a certificate and key are given), guarded by ``limits``.

    Raises:
        ValueError: only one of ``certfile`` and ``keyfile`` was given.
    """
    limits = limits or ConnectionLimits()
    server = GuardedServer((host, port), app, limits=limits, threads=threads,
                            server_name=f"ml-connector/{__version__}")
    # cheroot refuses oversized declared bodies and headers itself too (413) before the app runs.
    server.max_request_body_size = MAX_BODY_BYTES
    server.max_request_header_size = limits.max_header_bytes
    if certfile or keyfile:
        if not (certfile and keyfile):
            raise ValueError("TLS needs both a certificate file and a key file")
        server.ssl_adapter = LazyHandshakeAdapter(certfile, keyfile)
    return server


def serve(app: WsgiApp, host: str = "127.0.0.1", port: int = 8080, *, certfile: str | None = None,
          keyfile: str | None = None, on_ready: Callable[[str], None] | None = None,
          limits: ConnectionLimits | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then finish the calls in progress and return."""
    server = make_server(app, host, port, certfile=certfile, keyfile=keyfile, limits=limits)
    server.prepare()
    bound_host, bound_port = server.bind_addr[:2]
    scheme = "https" if server.ssl_adapter else "http"

    def stop_on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, stop_on_signal)
    try:
        # Inside the try: a SIGTERM that comes as soon as the URL is printed must still stop the threads.
        if on_ready:
            on_ready(f"{scheme}://{bound_host}:{bound_port}{SOAP_PATH}")
        server.serve()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping on request")
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@dataclass
class RunningServer:
    """A server started by :func:`running_server`: its base URL (``http://127.0.0.1:PORT``) and SOAP URL."""

    base_url: str
    server: Any
    thread: threading.Thread

    @property
    def soap_url(self) -> str:
        """The ``/qbwc`` endpoint."""
        return self.base_url + SOAP_PATH

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self.server.stop()
        self.thread.join(timeout=10)


def start_in_thread(app: WsgiApp, host: str = "127.0.0.1", port: int = 0, *, certfile: str | None = None,
                    keyfile: str | None = None, limits: ConnectionLimits | None = None) -> RunningServer:
    """Start ``app`` on a free loopback port in a background thread (tests, demo); call ``stop()``."""
    server = make_server(app, host, port, certfile=certfile, keyfile=keyfile, threads=4, limits=limits)
    server.expiration_interval = 0.05  # stop() waits one interval; keep tests quick
    server.prepare()
    bound_host, bound_port = server.bind_addr[:2]
    thread = threading.Thread(target=server.serve, name="mlconnector-serve", daemon=True)
    thread.start()
    scheme = "https" if server.ssl_adapter else "http"
    return RunningServer(f"{scheme}://{bound_host}:{bound_port}", server, thread)


@contextmanager
def running_server(app: WsgiApp, **options: Any) -> Iterator[RunningServer]:
    """``with running_server(app) as srv:`` serve on a free loopback port for the block's duration."""
    srv = start_in_thread(app, **options)
    try:
        yield srv
    finally:
        srv.stop()


__all__ = ["make_wsgi_app", "serve", "start_in_thread", "running_server", "RunningServer", "ConnectionLimits",
           "TNS"]


__all__ = [
    "MAX_BODY_BYTES", "SOAP_PATH", "SUPPORT_PATH", "ConnectionLimits", "GuardedServer", "RunningServer", "WsgiApp",
    "make_server", "make_wsgi_app", "running_server", "serve", "start_in_thread",
]
