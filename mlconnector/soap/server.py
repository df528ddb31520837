"""The HTTP side of ``mlconnector serve``: a small WSGI app around the Spyne service, run by cheroot.

Routes: ``POST /qbwc`` (SOAP), ``GET /qbwc?wsdl`` (the WSDL), ``GET /support`` (the AppSupport page the
Web Connector checks when the ``.qwc`` is added), 404 for anything else. Bodies above
:data:`MAX_BODY_BYTES` get 413 before they are read. Before any SOAP parsing, a body that is empty,
not UTF-8, not well-formed XML, has a document type declaration (no entity, no external fetch can
happen) or is not a SOAP 1.1 envelope gets a 400 with a SOAP fault saying which.

SOAP calls are handled one at a time under a lock: the Web Connector is sequential anyway, a call
takes milliseconds, and it lets every call share one SQLite connection safely.

A worker thread only ever sees a request that has fully arrived: a gatekeeper thread reads requests
(and performs TLS handshakes) without blocking and drops a client that is too slow; each client
address may hold a few connections at most (:class:`ConnectionLimits`). So clients that trickle
bytes cannot occupy the worker threads and stall the Web Connector's calls.
"""

from __future__ import annotations

import codecs
import html
import io
import ipaddress
import logging
import re
import selectors
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from cheroot import errors as cheroot_errors
from cheroot import wsgi
from cheroot.makefile import StreamReader
from cheroot.server import HTTPConnection
from cheroot.ssl.builtin import BuiltinSSLAdapter
from lxml import etree

from mlconnector import __version__
from mlconnector.soap.service import TNS, make_application, wsdl_document
from mlconnector.soap.session import QbwcService

log = logging.getLogger("mlconnector.soap.server")

MAX_BODY_BYTES = 10 * 1024 * 1024
SOAP_PATH = "/qbwc"
SUPPORT_PATH = "/support"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_SAFE_PARSER_OPTIONS = {
    "resolve_entities": False, "no_network": True, "load_dtd": False, "dtd_validation": False,
    "huge_tree": False,
}

SUPPORT_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ml-connector</title></head>
<body><h1>ml-connector</h1>
<p>This service posts approved Expensify expense reports into QuickBooks Desktop through the
QuickBooks Web Connector (version {version}).</p>
<p>If an update fails, run <code>mlconnector status</code> and <code>mlconnector audit</code> on the
machine running <code>mlconnector serve</code>; its log file has the details.</p>
</body></html>
"""


SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
_FAULT_DETAIL_CHARS = 200  # a parser message quoted in a fault is cut here: never more than a snippet of the body
_DECLARED_ENCODING = re.compile(rb"""<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']{0,60})["']""")
_CHARSET = re.compile(r"""\bcharset\s*=\s*["']?([^"';,\s]*)""", re.IGNORECASE)
_UTF8_NAMES = ("utf-8", "utf8")


def _soap_fault(code: str, text: str) -> bytes:
    env = SOAP11_ENV
    envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{env}}}Body"), f"{{{env}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = text
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


class _Refused(Exception):
    def __init__(self, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8",
                 reason: str = "") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.reason = reason  # for the log line


def _read_body(environ: dict[str, Any], limit: int) -> bytes:
    try:
        return _read_capped(environ, limit)
    except OSError as exc:  # cheroot's own cap on chunked bodies, or the client went away
        if "too large" in str(exc).lower():
            raise _Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode()) from None
        raise _Refused("400 Bad Request", b"The request body could not be read\n") from None


def _read_capped(environ: dict[str, Any], limit: int) -> bytes:
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise _Refused("400 Bad Request", b"Malformed Content-Length\n") from None
        if length > limit:
            raise _Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode())
        return bytes(stream.read(length)) if length > 0 else b""
    body = bytes(stream.read(limit + 1))  # chunked or unknown length: read at most one byte too many
    if len(body) > limit:
        raise _Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode())
    return body


def _bad_body(text: str) -> _Refused:
    """400 with a SOAP Client fault whose text says what is wrong with the body (the Web Connector shows it)."""
    return _Refused("400 Bad Request", _soap_fault("Client", text), "text/xml; charset=utf-8", reason=text)


def _clip(text: str, limit: int = _FAULT_DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_xml(body: bytes, content_type: str = "") -> None:
    """Refuse, with a fault that says why, what is not one plain UTF-8 SOAP 1.1 envelope.

    In order: a body at all; UTF-8 (Content-Type charset, XML declaration, the bytes themselves);
    well-formed XML; no DTD, hence no entity to expand or fetch (XXE); a SOAP 1.1 ``Envelope`` root.

    Raises:
        _Refused: 400 with a SOAP Client fault.
    """
    if not body:
        raise _bad_body("The request body is empty; a SOAP envelope was expected.")
    _check_utf8(body, content_type)
    try:
        doc = etree.parse(io.BytesIO(body), etree.XMLParser(**_SAFE_PARSER_OPTIONS))
    except etree.XMLSyntaxError as exc:  # lxml's message ends with the line and column
        raise _bad_body(_clip(f"The request is not well-formed XML: {exc.msg}")) from None
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise _bad_body("Document type declarations are not allowed in SOAP messages.")
    _check_envelope(str(doc.getroot().tag))


def _check_utf8(body: bytes, content_type: str) -> None:
    """The Web Connector sends UTF-8 (``text/xml; charset=utf-8``); anything else is refused, saying where."""
    charset = _CHARSET.search(content_type)
    if charset and charset.group(1) and charset.group(1).lower() not in _UTF8_NAMES:
        raise _bad_body(f"The Content-Type header declares charset={_clip(charset.group(1), 40)}; "
                        "send the SOAP request as UTF-8 (charset=utf-8).")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)) or b"\0" in body[:4]:
        raise _bad_body("The request body is UTF-16 or UTF-32; send the SOAP request as UTF-8.")
    declared = _DECLARED_ENCODING.match(body.removeprefix(codecs.BOM_UTF8))
    if declared and declared.group(1).decode("ascii", "replace").lower() not in _UTF8_NAMES:
        name = _clip(declared.group(1).decode("ascii", "replace"), 40)
        raise _bad_body(f'The XML declaration says encoding="{name}"; send the SOAP request as UTF-8 '
                        '(encoding="utf-8").')
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad_body(f"The request body is not valid UTF-8: byte 0x{body[exc.start]:02X} at offset "
                        f"{exc.start} ({exc.reason}).") from None


def _check_envelope(tag: str) -> None:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    if namespace == SOAP11_ENV and local == "Envelope":
        return
    if namespace == SOAP12_ENV:
        raise _bad_body(f"The request is a SOAP 1.2 envelope; this endpoint speaks SOAP 1.1 ({SOAP11_ENV}), "
                        "as the Web Connector does.")
    found = _clip(f"{local} in namespace {namespace}" if namespace else f"{local} (no namespace)", 100)
    raise _bad_body(f"The request is XML but not a SOAP 1.1 envelope: the root element is {found}; "
                    f"expected Envelope in namespace {SOAP11_ENV}.")


def _base_url(environ: dict[str, Any]) -> str:
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '')}"
    return f"{scheme}://{host}"


def make_wsgi_app(service_factory: Callable[[], QbwcService], *, max_body: int = MAX_BODY_BYTES) -> WsgiApp:
    """The WSGI application; ``service_factory`` is called once, on the first SOAP call."""
    from spyne.server.wsgi import WsgiApplication

    lock = threading.Lock()
    holder: dict[str, QbwcService] = {}

    def service() -> QbwcService:
        if "svc" not in holder:
            holder["svc"] = service_factory()
        return holder["svc"]

    application = make_application(service)
    spyne_app = WsgiApplication(application, max_content_length=max_body)  # its own default cap is 2 MiB
    wsdl_cache: dict[str, bytes] = {}

    def respond(start_response: StartResponse, status: str, body: bytes, content_type: str,
                extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + (extra or [])
        start_response(status, headers)
        return [body]

    def soap(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        body = _read_body(environ, max_body)
        _check_xml(body, environ.get("CONTENT_TYPE") or "")
        inner = dict(environ)
        inner["wsgi.input"] = io.BytesIO(body)
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["CONTENT_TYPE"] = environ.get("CONTENT_TYPE") or "text/xml; charset=utf-8"
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            captured["status"], captured["headers"] = status, headers

        with lock:
            chunks = b"".join(spyne_app(inner, capture))
        status = str(captured.get("status", "500 Internal Server Error"))
        if not status.startswith("200"):
            log.warning("SOAP call answered %s (SOAPAction %s): %s", status, environ.get("HTTP_SOAPACTION", "-"),
                        chunks[:300].decode("utf-8", "replace"))
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(chunks))))
        start_response(status, headers)
        return [chunks]

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path.rstrip("/") == SOAP_PATH:
                if method == "POST":
                    return soap(environ, start_response)
                if method in ("GET", "HEAD") and environ.get("QUERY_STRING", "").lower().startswith("wsdl"):
                    url = _base_url(environ) + SOAP_PATH
                    if url not in wsdl_cache:
                        wsdl_cache[url] = wsdl_document(application, url)
                    return respond(start_response, "200 OK", wsdl_cache[url], "text/xml; charset=utf-8")
                return respond(start_response, "405 Method Not Allowed",
                               b"POST SOAP requests here; the WSDL is at ?wsdl\n", "text/plain; charset=utf-8",
                               [("Allow", "POST, GET")])
            if path.rstrip("/") == SUPPORT_PATH and method in ("GET", "HEAD"):
                page = SUPPORT_PAGE.format(version=html.escape(__version__)).encode("utf-8")
                return respond(start_response, "200 OK", page, "text/html; charset=utf-8")
            return respond(start_response, "404 Not Found", b"Not found\n", "text/plain; charset=utf-8")
        except _Refused as refusal:
            log.warning("refused %s %s: %s%s", method, path, refusal.status,
                        f" ({refusal.reason})" if refusal.reason else "")
            return respond(start_response, refusal.status, refusal.body, refusal.content_type)
        except Exception:  # a bug in this layer: log it, answer a fault QBWC can show
            log.exception("unexpected error serving %s %s", method, path)
            return respond(start_response, "500 Internal Server Error",
                           _soap_fault("Server", "ml-connector hit an internal error; see its log file."),
                           "text/xml; charset=utf-8")

    return app


# ------------------------------------------------------------------------------- connection guard
#
# cheroot hands a connection to a worker thread as soon as it is accepted (or, when kept alive, as soon
# as it turns readable), and the worker then blocks reading the request; its socket timeout bounds each
# recv, not the request, so a client sending a byte every couple of seconds keeps the thread as long as
# it likes, and a dozen such clients stop the endpoint. It also performs the TLS handshake inside its
# accept loop, so one silent client stalls every accept. So, in front of the worker pool:
#
#   accept (cheroot's selector thread)
#     -> _GuardedServer.process_conn: per-address cap, else close at once (no thread spent)
#     -> _Gatekeeper: one thread, non-blocking: TLS handshake, then read until the request (headers and
#        body) is complete, within a deadline; too slow -> close
#     -> cheroot's worker pool, the request replayed from memory (_ReplayReader)
#     -> after the response, a kept-alive connection waits in cheroot's selector and comes back here.


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to deliver a request, and how many connections it may hold.

    A request (TLS handshake, headers and body) must be complete ``request_timeout`` seconds after its
    first byte could be read, plus one second for every ``min_body_rate`` bytes of body received so far.
    A trickle is therefore dropped after about ``request_timeout``, while a body keeps earning time as
    long as it averages ``min_body_rate``: a 10 MB receiveResponseXML from a Web Connector on a LAN arrives
    in well under a second, and even a 1 Mbit/s link (~120 KB/s) stays ahead of 64 KiB/s.

    Usage: ``start_in_thread(app, limits=ConnectionLimits(request_timeout=0.5))``.
    """

    request_timeout: float = 5.0
    min_body_rate: float = 64 * 1024  # bytes per second
    per_address: int = 8  # the Web Connector makes one call at a time; IPv6 counts per /64
    max_pending: int = 256  # requests still arriving, all addresses together (Windows select() allows 512)
    max_header_bytes: int = 64 * 1024
    max_buffered_bytes: int = 64 * 1024 * 1024  # bodies held in memory while they arrive, all together


_LISTEN_BACKLOG = 128  # cheroot's default of 5 drops SYNs when a burst of connections arrives at once
_RECV_BYTES = 65536
_MAX_CHUNK_LINE = 1024
_MORE, _DONE, _HAND_OVER, _REFUSE = "more", "done", "hand over", "refuse"


class _LogBudget:
    """Logs at most ``per_window`` lines per ``window`` seconds; an attacker cannot fill the log.

    The lines left out are counted, and the count is logged with the first line of the next window.
    """

    def __init__(self, per_window: int = 20, window: float = 60.0) -> None:
        self._per_window = per_window
        self._window = window
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._count = 0
        self._skipped = 0

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log one line unless this window's budget is spent."""
        with self._lock:
            now = time.monotonic()
            skipped = 0
            if now - self._start >= self._window:
                skipped, self._skipped, self._count, self._start = self._skipped, 0, 0, now
            if self._count >= self._per_window:
                self._skipped += 1
                return
            self._count += 1
        if skipped:
            log.warning("%d more connection messages in the last %.0f s were not logged", skipped, self._window)
        log.log(level, msg, *args, exc_info=exc_info)


def _address_key(address: str | None) -> str:
    """What the per-address cap counts: the IP (IPv4-mapped IPv6 as IPv4), or an IPv6 /64 network."""
    if not address:
        return "local"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip.exploded}/64", strict=False))  # one host holds a whole /64
    return str(ip)


class _Framing:
    """Where the first HTTP request in a growing buffer ends, judged the way cheroot will read it.

    :meth:`scan` answers ``_MORE`` (keep reading), ``_DONE`` (headers and body are all buffered),
    ``_HAND_OVER`` (cheroot refuses it from what is buffered: oversized headers or body, bad
    Content-Length, unknown Transfer-Encoding) or ``_REFUSE`` (malformed chunked framing that cheroot
    would wait on the socket for). An ``Expect: 100-continue`` header is taken out of the buffer
    (:attr:`wants_continue`): the gatekeeper answers it, so cheroot must not answer it a second time.
    """

    def __init__(self, max_header: int, max_body: int) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self.head_end: int | None = None  # offset just past the blank line that ends the headers
        self.end = 0  # offset just past what cheroot will read, once _DONE
        self.wants_continue = False
        self.chunked = False
        self._length = 0
        self._scanned = 0  # how far the search for the end of the headers got
        self._chunk_at = 0  # offset of the next chunk-size line
        self._chunk_counted = 0  # what cheroot's ChunkedRFile counts against max_body up to _chunk_at

    def body_received(self, buf: bytearray) -> int:
        """Body bytes buffered so far (0 while the headers are incomplete)."""
        return 0 if self.head_end is None else len(buf) - self.head_end

    def scan(self, buf: bytearray) -> str:
        """Judge ``buf`` (which may lose its Expect header); see the class docstring."""
        if self.head_end is None:
            end = buf.find(b"\r\n\r\n", max(self._scanned - 3, 0))
            if end < 0:
                self._scanned = len(buf)
                # cheroot reads header lines 256 bytes at a time and refuses once past its limit: with
                # this much buffered it refuses without waiting on the socket.
                return _HAND_OVER if len(buf) >= self.max_header + 256 else _MORE
            if end + 4 > self.max_header:
                return _HAND_OVER
            verdict = self._read_head(buf, end)
            if verdict != _MORE:
                return verdict
        if self.chunked:
            return self._scan_chunks(buf)
        assert self.head_end is not None
        self.end = self.head_end + self._length
        return _DONE if len(buf) >= self.end else _MORE

    def _read_head(self, buf: bytearray, end: int) -> str:
        lines = bytes(buf[:end]).split(b"\r\n")
        if lines[0] == b"":  # cheroot skips one empty line before the request line
            lines = lines[1:]
        if not lines or any(b"\n" in line for line in lines):
            return _HAND_OVER  # cheroot answers 400 (bare LF) at or before this line
        http10 = lines[0].rstrip().rsplit(b" ", 1)[-1].startswith(b"HTTP/1.0")
        kept, length, codings, name, dropping = [lines[0]], b"0", [], b"", False
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):  # a continuation line: cheroot replaces (or comma-joins) the value
                value = line.strip()
                if dropping:
                    continue
            else:
                key, colon, value = line.partition(b":")
                if not colon:
                    return _HAND_OVER  # cheroot answers 400
                name, value = key.strip().lower(), value.strip()
                dropping = name == b"expect" and value.lower() == b"100-continue"
                if dropping:
                    self.wants_continue = not http10  # no 100 Continue to an HTTP/1.0 client
                    continue
            kept.append(line)
            if name == b"content-length":
                length = value  # the last one wins, as in cheroot
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
        head = b"\r\n".join(kept) + b"\r\n\r\n"
        if len(kept) < len(lines):
            buf[: end + 4] = head
        self.head_end = len(head) if len(kept) < len(lines) else end + 4
        try:
            content_length = int(length)  # int() on bytes, exactly as cheroot parses it
        except ValueError:
            return _HAND_OVER  # cheroot answers 400
        if content_length > self.max_body:
            return _HAND_OVER  # cheroot answers 413 before reading the body
        if codings and not http10:  # cheroot ignores Transfer-Encoding from HTTP/1.0 clients
            if any(c != b"chunked" for c in codings):
                return _HAND_OVER  # cheroot answers 501
            self.chunked, self._chunk_at = True, self.head_end
        self._length = max(content_length, 0)
        return _MORE

    def _scan_chunks(self, buf: bytearray) -> str:
        """Follow the chunks as cheroot's ChunkedRFile reads them, with its accounting against max_body."""
        while True:
            eol = buf.find(b"\n", self._chunk_at)
            if eol < 0:
                return _REFUSE if len(buf) - self._chunk_at > _MAX_CHUNK_LINE else _MORE
            counted = self._chunk_counted + eol + 1 - self._chunk_at
            if counted > self.max_body:
                return _HAND_OVER  # cheroot refuses before reading on
            try:
                size = int(bytes(buf[self._chunk_at:eol]).strip().split(b";", 1)[0], 16)
            except ValueError:
                return _REFUSE
            if size <= 0:  # the last chunk; cheroot reads no trailer
                self.end = eol + 1
                return _DONE
            if counted + size > self.max_body:
                return _HAND_OVER  # cheroot refuses before reading the chunk
            data_end = eol + 1 + size
            if len(buf) < data_end + 2:
                return _MORE
            if buf[data_end:data_end + 2] != b"\r\n":
                return _REFUSE
            self._chunk_counted, self._chunk_at = counted + size, data_end + 2


class _ReplayRaw(socket.SocketIO):
    """The connection's socket, but first the bytes the gatekeeper already read from it."""

    def __init__(self, sock: socket.socket, prefix: bytes, deadline: float, timeout: float) -> None:
        super().__init__(sock, "rb")
        self._socket = sock
        self._prefix = memoryview(prefix)
        self._deadline = deadline
        self._timeout = timeout

    @property
    def remaining(self) -> int:
        """Buffered bytes not yet read."""
        return len(self._prefix)

    def readinto(self, b: Any) -> int | None:
        """Serve the buffered bytes, then the socket."""
        if self._prefix:
            n = min(len(b), len(self._prefix))
            memoryview(b)[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # Only a request whose end the gatekeeper misjudged reads on from here while being served: keep
        # even that within the request's deadline, so it cannot hold a worker thread for longer.
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")  # cheroot answers 408 to this exact text
        self._socket.settimeout(min(left, self._timeout))
        try:
            return super().readinto(b)
        finally:
            self._socket.settimeout(self._timeout)


class _ReplayReader(StreamReader):
    """cheroot's buffered reader over a :class:`_ReplayRaw`."""

    def __init__(self, raw: _ReplayRaw, bufsize: int) -> None:
        super(StreamReader, self).__init__(raw, bufsize)  # StreamReader.__init__ would open its own SocketIO
        self.bytes_read = 0
        self._replay = raw

    def has_data(self) -> bool:
        """Buffered bytes left: a pipelined request (cheroot then processes the connection again at once)."""
        return bool(super().has_data()) or self._replay.remaining > 0  # type: ignore[no-untyped-call]


class _LazyHandshakeAdapter(BuiltinSSLAdapter):
    """TLS without the handshake in cheroot's accept loop: the gatekeeper performs it, non-blocking."""

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, Any]]:
        """Wrap ``sock`` for TLS; the WSGI TLS entries come once the handshake is done."""
        try:
            wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        except OSError as exc:  # the client is already gone
            raise cheroot_errors.FatalSSLAlert(*exc.args) from exc
        return wrapped, {}


_NEW, _OPEN, _CLOSED = "new", "open", "closed"  # a connection's standing with the per-address count


class _TrackedConnection(HTTPConnection):
    """A connection that tells the server when it closes, for the per-address count."""

    address_key: str | None = None
    state = _NEW

    def close(self) -> None:
        """Close once, and release the address slot."""
        if self.state == _CLOSED:
            return
        try:
            super().close()
        finally:
            self.server.release(self)


class _Pending:
    """A connection whose request is still arriving."""

    def __init__(self, conn: Any, framing: _Framing, now: float) -> None:
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


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_TIMEOUT_RESPONSE = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _plain_400(text: bytes) -> bytes:
    return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(text), text))


_BAD_CHUNKS_RESPONSE = _plain_400(b"Malformed chunked request body.\n")
_PLAIN_HTTP_RESPONSE = _plain_400(b"The client sent a plain HTTP request, but this server only speaks HTTPS on "
                                  b"this port.")


class _Gatekeeper:
    """One thread that reads every request in full, without blocking, before a worker thread sees it.

    Connections arrive through :meth:`add` (from cheroot's selector thread, or a worker handing back a
    kept-alive connection with a pipelined request). A connection leaves to the worker pool when its
    request is complete, or closed: too slow (past :meth:`_Pending.deadline`), gone, malformed, or over
    the global limits. Only this thread touches ``_pending`` and the selector.
    """

    def __init__(self, server: _GuardedServer) -> None:
        self._server = server
        self._limits = server.limits
        self._notes = server.notes
        self._selector = selectors.DefaultSelector()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._lock = threading.Lock()
        self._inbox: list[Any] = []
        self._stopping = False
        self._pending: set[_Pending] = set()
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
            pending = item if isinstance(item, _Pending) else None
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
            drained += conn.rfile.read1(_RECV_BYTES)
        if drained and not drained.lstrip(b"\r\n"):
            # Only the stray CRLF some clients add after a body: the connection is idle, not slow.
            self._server.put_conn(conn)
            return
        if len(self._pending) >= self._limits.max_pending:
            self._notes.log(logging.WARNING, "refused a connection from %s: %d requests are already arriving "
                            "(server busy)", conn.remote_addr, len(self._pending))
            conn.close()
            return
        framing = _Framing(self._limits.max_header_bytes, self._server.max_request_body_size)
        pending = _Pending(conn, framing, time.monotonic())
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

    def _advance(self, pending: _Pending) -> None:
        """Handshake and read what has arrived, until the socket would block."""
        if pending.handshaking and not self._handshake(pending):
            return
        while pending in self._pending:
            try:
                chunk = pending.sock.recv(_RECV_BYTES)
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

    def _judge(self, pending: _Pending) -> bool:
        """Hand the request over, refuse it, or answer its Expect; True when it left the gatekeeper."""
        verdict = pending.framing.scan(pending.buf)
        if verdict in (_DONE, _HAND_OVER):
            self._hand_over(pending, verdict)
            return True
        if verdict == _REFUSE:
            self._close(pending, _BAD_CHUNKS_RESPONSE)
            return True
        if pending.framing.wants_continue and not pending.continued:
            pending.continued = True
            with suppress(OSError):  # if it cannot go now, the client sends the body after its own wait
                pending.sock.send(_CONTINUE)
        return False

    def _handshake(self, pending: _Pending) -> bool:
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
                    socket.socket.send(sock, _PLAIN_HTTP_RESPONSE)
            self._notes.log(logging.INFO, "TLS handshake with %s failed: %s", pending.conn.remote_addr,
                            str(exc)[:200])
            self._close(pending)
            return False
        pending.handshaking = False
        pending.conn.ssl_env = self._server.ssl_adapter.get_environ(sock)
        self._watch(pending, selectors.EVENT_READ)
        return True

    def _charge(self, pending: _Pending, size: int) -> bool:
        """Count ``size`` buffered bytes against the global budget; False (and closed) when it is spent."""
        pending.counted += size
        self._buffered += size
        if self._buffered <= self._limits.max_buffered_bytes:
            return True
        self._notes.log(logging.WARNING, "dropped a connection from %s: %d bytes of requests are already "
                        "buffered (server busy)", pending.conn.remote_addr, self._buffered - size)
        self._close(pending)
        return False

    def _watch(self, pending: _Pending, events: int) -> None:
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
            self._close(pending, _TIMEOUT_RESPONSE if started else b"")

    def _forget(self, pending: _Pending) -> None:
        self._pending.discard(pending)
        self._buffered -= pending.counted
        pending.counted = 0
        with suppress(KeyError, ValueError):
            self._selector.unregister(pending.sock)

    def _close(self, pending: _Pending, farewell: bytes = b"") -> None:
        self._forget(pending)
        if farewell:
            with suppress(OSError):  # best effort: the socket is non-blocking and the answer is small
                pending.sock.send(farewell)
        with suppress(OSError):
            pending.conn.close()

    def _hand_over(self, pending: _Pending, verdict: str) -> None:
        self._forget(pending)
        conn, end, replay = pending.conn, pending.framing.end, bytes(pending.buf)
        if verdict == _DONE and pending.framing.chunked and replay[end:end + 2] == b"\r\n":
            replay = replay[:end] + replay[end + 2:]  # the empty trailer after the last chunk: cheroot never reads it
        deadline = pending.deadline(self._limits)
        pending.sock.settimeout(self._server.timeout)
        old, conn.rfile = conn.rfile, _ReplayReader(
            _ReplayRaw(pending.sock, replay, deadline, self._server.timeout), conn.rbufsize)
        old.close()  # closes its SocketIO only; the socket stays open
        self._server.dispatch(conn)


class _GuardedServer(wsgi.Server):
    """cheroot's WSGI server behind a :class:`_Gatekeeper`, with a cap on connections per address."""

    ConnectionClass = _TrackedConnection

    def __init__(self, bind_addr: tuple[str, int], app: WsgiApp, *, limits: ConnectionLimits, threads: int,
                 server_name: str) -> None:
        super().__init__(bind_addr, app, numthreads=threads, server_name=server_name,
                         request_queue_size=_LISTEN_BACKLOG)
        self.limits = limits
        self.notes = _LogBudget()
        self._gate = _Gatekeeper(self)
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
        if conn.state == _CLOSED:
            return
        if conn.state != _OPEN and not self._admit(conn):
            return
        self._gate.add(conn)

    def dispatch(self, conn: Any) -> None:
        """Queue a connection whose request has arrived for a worker thread (cheroot's own process_conn)."""
        super().process_conn(conn)

    def release(self, conn: Any) -> None:
        """Called once when an admitted connection closes."""
        with self._count_lock:
            key, conn.address_key, conn.state = conn.address_key, None, _CLOSED
            if key is not None:
                left = self._per_address.get(key, 1) - 1
                if left > 0:
                    self._per_address[key] = left
                else:
                    self._per_address.pop(key, None)

    def _admit(self, conn: Any) -> bool:
        key = _address_key(conn.remote_addr)
        with self._count_lock:
            open_now = self._per_address.get(key, 0)
            if open_now < self.limits.per_address:
                self._per_address[key] = open_now + 1
                conn.address_key, conn.state = key, _OPEN
                return True
        self.notes.log(logging.WARNING, "refused a connection from %s: %d connections from this address are "
                       "already open", conn.remote_addr, open_now)
        with suppress(OSError):
            conn.close()
        return False


# ------------------------------------------------------------------------------------- serving


def make_server(app: WsgiApp, host: str = "127.0.0.1", port: int = 8080, *, certfile: str | None = None,
                keyfile: str | None = None, threads: int = 8, limits: ConnectionLimits | None = None,
                ) -> _GuardedServer:
    """A cheroot server for ``app`` (TLS when a certificate and key are given), guarded by ``limits``.

    Raises:
        ValueError: only one of ``certfile`` and ``keyfile`` was given.
    """
    limits = limits or ConnectionLimits()
    server = _GuardedServer((host, port), app, limits=limits, threads=threads,
                            server_name=f"ml-connector/{__version__}")
    # cheroot refuses oversized declared bodies and headers itself too (413) before the app runs.
    server.max_request_body_size = MAX_BODY_BYTES
    server.max_request_header_size = limits.max_header_bytes
    if certfile or keyfile:
        if not (certfile and keyfile):
            raise ValueError("TLS needs both a certificate file and a key file")
        server.ssl_adapter = _LazyHandshakeAdapter(certfile, keyfile)
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
    if on_ready:
        on_ready(f"{scheme}://{bound_host}:{bound_port}{SOAP_PATH}")
    try:
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
