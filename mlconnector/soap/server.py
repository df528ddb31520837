"""The HTTP side of ``mlconnector serve``: a small WSGI app around the Spyne service, run by cheroot.

Routes: ``POST /qbwc`` (SOAP), ``GET /qbwc?wsdl`` (the WSDL), ``GET /support`` (the AppSupport page the
Web Connector checks when the ``.qwc`` is added), 404 for anything else. Bodies above
:data:`MAX_BODY_BYTES` get 413 before they are read; a body with a document type declaration is
refused before any SOAP parsing (no entity, no external fetch can happen).

SOAP calls are handled one at a time under a lock: the Web Connector is sequential anyway, a call
takes milliseconds, and it lets every call share one SQLite connection safely while cheroot's
threads still read and write slow connections in parallel.
"""

from __future__ import annotations

import html
import io
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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


def _soap_fault(code: str, text: str) -> bytes:
    env = "http://schemas.xmlsoap.org/soap/envelope/"
    envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{env}}}Body"), f"{{{env}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = text
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


class _Refused(Exception):
    def __init__(self, status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type


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


def _check_xml(body: bytes) -> None:
    """Refuse what is not one plain XML document: no DTD, hence no entities to expand or fetch."""
    try:
        doc = etree.parse(io.BytesIO(body), etree.XMLParser(**_SAFE_PARSER_OPTIONS))
    except etree.XMLSyntaxError:
        raise _Refused("400 Bad Request", _soap_fault("Client", "The request is not well-formed XML."),
                       "text/xml; charset=utf-8") from None
    if doc.docinfo.doctype or doc.docinfo.internalDTD is not None:
        raise _Refused("400 Bad Request",
                       _soap_fault("Client", "Document type declarations are not allowed in SOAP messages."),
                       "text/xml; charset=utf-8")


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
    spyne_app = WsgiApplication(application)
    wsdl_cache: dict[str, bytes] = {}

    def respond(start_response: StartResponse, status: str, body: bytes, content_type: str,
                extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + (extra or [])
        start_response(status, headers)
        return [body]

    def soap(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        body = _read_body(environ, max_body)
        _check_xml(body)
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
            log.warning("refused %s %s: %s", method, path, refusal.status)
            return respond(start_response, refusal.status, refusal.body, refusal.content_type)
        except Exception:  # a bug in this layer: log it, answer a fault QBWC can show
            log.exception("unexpected error serving %s %s", method, path)
            return respond(start_response, "500 Internal Server Error",
                           _soap_fault("Server", "ml-connector hit an internal error; see its log file."),
                           "text/xml; charset=utf-8")

    return app


def make_server(app: WsgiApp, host: str = "127.0.0.1", port: int = 8080, *, certfile: str | None = None,
                keyfile: str | None = None, threads: int = 8) -> Any:
    """A cheroot server for ``app`` (TLS when a certificate and key are given)."""
    from cheroot import wsgi

    server = wsgi.Server((host, port), app, numthreads=threads, server_name=f"ml-connector/{__version__}")
    # cheroot refuses oversized declared bodies itself too (413) before the app runs.
    server.max_request_body_size = MAX_BODY_BYTES
    if certfile or keyfile:
        if not (certfile and keyfile):
            raise ValueError("TLS needs both a certificate file and a key file")
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(certfile, keyfile)
    return server


def serve(app: WsgiApp, host: str = "127.0.0.1", port: int = 8080, *, certfile: str | None = None,
          keyfile: str | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM, then finish the calls in progress and return."""
    server = make_server(app, host, port, certfile=certfile, keyfile=keyfile)
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
                    keyfile: str | None = None) -> RunningServer:
    """Start ``app`` on a free loopback port in a background thread (tests, demo); call ``stop()``."""
    server = make_server(app, host, port, certfile=certfile, keyfile=keyfile, threads=4)
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


__all__ = ["make_wsgi_app", "serve", "start_in_thread", "running_server", "RunningServer", "TNS"]
