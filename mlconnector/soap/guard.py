"""The connection guard in front of cheroot's worker threads: a deadline per request, a cap per address."""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from cheroot import errors as cheroot_errors
from cheroot.server import HTTPConnection
from cheroot.ssl.builtin import BuiltinSSLAdapter

from mlconnector.soap.framing import (
    DONE,
    HAND_OVER,
    RECV_BYTES,
    REFUSE,
    Framing,
    ReplayRaw,
    ReplayReader,
)
from mlconnector.soap.limits import ConnectionLimits

if TYPE_CHECKING:
    from mlconnector.soap.server import GuardedServer


log = logging.getLogger("mlconnector.soap.server")

# ------------------------------------------------------------------------------- connection guard
#
# cheroot hands a connection to a worker thread as soon as it is accepted (or, when kept alive, as soon
# as it turns readable), and the worker then blocks reading the request; its socket timeout bounds each
# recv, not the request, so a client sending a byte every couple of seconds keeps the thread as long as
# it likes, and a dozen such clients stop the endpoint. It also performs the TLS handshake inside its
# accept loop, so one silent client stalls every accept. So, in front of the worker pool:
#
#   accept (cheroot's selector thread)
#     -> GuardedServer.process_conn: per-address cap, else close at once (no thread spent)
#     -> Gatekeeper: one thread, non-blocking: TLS handshake, then read until the request (headers and
#        body) is complete, within a deadline; too slow -> close
#     -> cheroot's worker pool, the request replayed from memory (ReplayReader)
#     -> after the response, a kept-alive connection waits in cheroot's selector and comes back here.


class LazyHandshakeAdapter(BuiltinSSLAdapter):
    """TLS without the handshake in cheroot's accept loop: the gatekeeper performs it, non-blocking."""

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        """Wrap ``sock`` for TLS; the WSGI TLS entries come once the handshake is done."""
        try:
            wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:  # the client is already gone
            raise cheroot_errors.FatalSSLAlert(*exc.args) from exc
        return wrapped, {}


NEW, OPEN, CLOSED = "new", "open", "closed"  # a connection's standing with the per-address count


class TrackedConnection(HTTPConnection):
    """A connection that tells the server when it closes, for the per-address count."""

    address_key: str | None = None
    state = NEW

    def close(self) -> None:
        """Close once, and release the address slot."""
        if self.state == CLOSED:
            return
        try:
            super().close()
        finally:
            self.server.release(self)


class Pending:
    """A connection whose request is still arriving."""

    def __init__(self, conn: Any, framing: Framing, now: float) -> None:
        self.conn = conn
        self.sock: socket.socket = conn.socket
        self.framing = framing
        self.buf = bytearray()
        self.started = now
        self.counted = 0  # bytes charged to the buffer budget
        self.events = selectors.EVENT_READ
        self.handshaking = isinstance(self.sock, ssl.SSLSocket) and not conn.ssl_env
        self.continued = False

    def deadline(self, limits: ConnectionLimits) -> float:
        """When this request must be complete (it moves on as body bytes arrive)."""
        return self.started + limits.request_timeout + self.framing.body_received(self.buf) / limits.min_body_rate


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def plain_400(text: bytes) -> bytes:
    return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(text), text))


BAD_CHUNKS_RESPONSE = plain_400(b"Malformed chunked request body.\n")
PLAIN_HTTP_RESPONSE = plain_400(b"The client sent a plain HTTP request, but this server only speaks HTTPS on "
                                  b"this port.")


class Gatekeeper:
    """One thread that reads every request in full, without blocking, before a worker thread sees it.

    Connections arrive through :meth:`add` (from cheroot's selector thread, or a worker handing back a
    kept-alive connection with a pipelined request). A connection leaves to the worker pool when its
    request is complete, or closed: too slow (past :meth:`Pending.deadline`), gone, malformed, or over
    the global limits. Only this thread touches ``_pending`` and the selector.
    """

    def __init__(self, server: GuardedServer) -> None:
        self._server = server
        self._limits = server.limits
        self._notes = server.notes
        self._selector = selectors.DefaultSelector()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock = threading.Lock()
        self._inbox: list[Any] = []
        self._stopping = False
        self._pending: set[Pending] = set()
        self._buffered = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="mlconnector-gatekeeper", daemon=True)
        self._thread.start()

    def add(self, conn: Any) -> None:
        """Take ``conn``, whose next request is (about to be) arriving; thread-safe."""
        with self._lock:
            if not self._stopping:
                self._inbox.append(conn)
                conn = None
        if conn is not None:
            conn.close()
            return
        self._wake()

    def stop(self) -> None:
        """Stop the thread and close every connection it holds."""
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for conn in inbox:
            conn.close()
        if self._thread is None:
            self._selector.close()

    def _wake(self) -> None:
        with suppress(OSError, AttributeError):  # a full wake-up pipe already means "wake up"
            assert self._wake_w is not None
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        assert self._wake_r is not None and self._wake_w is not None
        try:
            while not self._stopping:
                try:
                    self._turn(self._wake_r)
                except Exception:  # the gatekeeper must not die: every request would then wait forever
                    self._notes.log(logging.ERROR, "connection gatekeeper error; carrying on", exc_info=True)
                    time.sleep(0.05)
        finally:
            for pending in list(self._pending):
                self._close(pending)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _turn(self, wake_r: socket.socket) -> None:
        for key, _ in self._selector.select(self._wait()):
            if key.data is None:
                with suppress(OSError):
                    wake_r.recv(4096)
            else:
                self._guarded(self._advance, key.data)
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for conn in inbox:
            self._guarded(self._begin, conn)
        self._expire()

    def _guarded(self, step: Callable[[Any], None], item: Any) -> None:
        """Run one step for one connection; a bug there costs that connection, not the gatekeeper."""
        try:
            step(item)
        except Exception:
            self._notes.log(logging.ERROR, "unexpected error reading a request; connection closed", exc_info=True)
            pending = item if isinstance(item, Pending) else None
            if pending is not None:
                self._close(pending)
            else:
                with suppress(Exception):
                    item.close()

    def _wait(self) -> float:
        if not self._pending:
            return 1.0
        soonest = min(p.deadline(self._limits) for p in self._pending)
        return min(max(soonest - time.monotonic(), 0.0), 1.0)

    def _begin(self, conn: Any) -> None:
        drained = bytearray()
        while conn.rfile.has_data():  # bytes cheroot (or the last replay) buffered: a pipelined request
            drained += conn.rfile.read1(RECV_BYTES)
        if drained and not drained.lstrip(b"\r\n"):
            # Only the stray CRLF some clients add after a body: the connection is idle, not slow.
            self._server.put_conn(conn)
            return
        if len(self._pending) >= self._limits.max_pending:
            self._notes.log(logging.WARNING, "refused a connection from %s: %d requests are already arriving "
                            "(server busy)", conn.remote_addr, len(self._pending))
            conn.close()
            return
        framing = Framing(self._limits.max_header_bytes, self._server.max_request_body_size)
        pending = Pending(conn, framing, time.monotonic())
        try:
            pending.sock.setblocking(False)
            self._selector.register(pending.sock, selectors.EVENT_READ, pending)
        except (OSError, ValueError):  # closed meanwhile
            conn.close()
            return
        self._pending.add(pending)
        pending.buf += drained
        if not self._charge(pending, len(drained)) or (drained and self._judge(pending)):
            return
        self._advance(pending)

    def _advance(self, pending: Pending) -> None:
        """Handshake and read what has arrived, until the socket would block."""
        if pending.handshaking and not self._handshake(pending):
            return
        while pending in self._pending:
            try:
                chunk = pending.sock.recv(RECV_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError):
                self._watch(pending, selectors.EVENT_READ)
                return
            except ssl.SSLWantWriteError:
                self._watch(pending, selectors.EVENT_WRITE)
                return
            except OSError:  # reset, or a TLS alert
                self._close(pending)
                return
            if not chunk:  # the client went away (or closed a kept-alive connection)
                self._close(pending)
                return
            pending.buf += chunk
            if self._charge(pending, len(chunk)):
                self._judge(pending)

    def _judge(self, pending: Pending) -> bool:
        """Hand the request over, refuse it, or answer its Expect; True when it left the gatekeeper."""
        verdict = pending.framing.scan(pending.buf)
        if verdict in (DONE, HAND_OVER):
            self._hand_over(pending, verdict)
            return True
        if verdict == REFUSE:
            self._close(pending, BAD_CHUNKS_RESPONSE)
            return True
        if pending.framing.wants_continue and not pending.continued:
            pending.continued = True
            with suppress(OSError):  # if it cannot go now, the client sends the body after its own wait
                pending.sock.send(CONTINUE)
        return False

    def _handshake(self, pending: Pending) -> bool:
        sock = pending.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(pending, selectors.EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self._watch(pending, selectors.EVENT_WRITE)
            return False
        except OSError as exc:
            if "http request" in str(exc).lower():  # plain HTTP on the HTTPS port: say so, as cheroot does
                with suppress(OSError):
                    socket.socket.send(sock, PLAIN_HTTP_RESPONSE)
            self._notes.log(logging.INFO, "TLS handshake with %s failed: %s", pending.conn.remote_addr,
                            str(exc)[:200])
            self._close(pending)
            return False
        pending.handshaking = False
        pending.conn.ssl_env = self._server.ssl_adapter.get_environ(sock)
        self._watch(pending, selectors.EVENT_READ)
        return True

    def _charge(self, pending: Pending, size: int) -> bool:
        """Count ``size`` buffered bytes against the global budget; False (and closed) when it is spent."""
        pending.counted += size
        self._buffered += size
        if self._buffered <= self._limits.max_buffered_bytes:
            return True
        self._notes.log(logging.WARNING, "dropped a connection from %s: %d bytes of requests are already "
                        "buffered (server busy)", pending.conn.remote_addr, self._buffered - size)
        self._close(pending)
        return False

    def _watch(self, pending: Pending, events: int) -> None:
        if pending.events != events:
            pending.events = events
            self._selector.modify(pending.sock, events, pending)

    def _expire(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self._pending if p.deadline(self._limits) <= now]:
            self._notes.log(logging.WARNING, "dropped a connection from %s: no complete request after %.1f s "
                            "(%d bytes arrived; slow client)", pending.conn.remote_addr, now - pending.started,
                            len(pending.buf))
            started = bool(pending.buf) and not pending.handshaking
            self._close(pending, TIMEOUT_RESPONSE if started else b"")

    def _forget(self, pending: Pending) -> None:
        self._pending.discard(pending)
        self._buffered -= pending.counted
        pending.counted = 0
        with suppress(KeyError, ValueError):
            self._selector.unregister(pending.sock)

    def _close(self, pending: Pending, farewell: bytes = b"") -> None:
        self._forget(pending)
        if farewell:
            with suppress(OSError):  # best effort: the socket is non-blocking and the answer is small
                pending.sock.send(farewell)
        with suppress(OSError):
            pending.conn.close()

    def _hand_over(self, pending: Pending, verdict: str) -> None:
        self._forget(pending)
        conn, end, replay = pending.conn, pending.framing.end, bytes(pending.buf)
        if verdict == DONE and pending.framing.chunked and replay[end:end + 2] == b"\r\n":
            replay = replay[:end] + replay[end + 2:]  # the empty trailer after the last chunk: cheroot never reads it
        deadline = pending.deadline(self._limits)
        pending.sock.settimeout(self._server.timeout)
        old, conn.rfile = conn.rfile, ReplayReader(
            ReplayRaw(pending.sock, replay, deadline, self._server.timeout), conn.rbufsize)
        old.close()  # closes its SocketIO only; the socket stays open
        self._server.dispatch(conn)
