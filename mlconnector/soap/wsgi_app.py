"""The WSGI side of ``mlconnector serve``: a small app around the Spyne service.

Routes: ``POST /qbwc`` (SOAP), ``GET /qbwc?wsdl`` (the WSDL), ``GET /support`` (the AppSupport page the
Web Connector checks when the ``.qwc`` is added), 404 for anything else. Bodies above
:data:`MAX_BODY_BYTES` get 413 before they are read. Before any SOAP parsing, a body that is empty,
not UTF-8, not well-formed XML, has a document type declaration (no entity, no external fetch can
happen) or is not a SOAP 1.1 envelope gets a 400 with a SOAP fault saying which.

SOAP calls are handled one at a time under a lock: the Web Connector is sequential anyway, a call
takes milliseconds, and it lets every call share one SQLite connection safely.
"""

from __future__ import annotations

import codecs
import html
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from lxml import etree

from mlconnector import __version__
from mlconnector.soap.service import make_application, wsdl_document
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


def soap_fault(code: str, text: str) -> bytes:
    env = SOAP11_ENV
    envelope = etree.Element(f"{{{env}}}Envelope", nsmap={"soap": env})
    fault = etree.SubElement(etree.SubElement(envelope, f"{{{env}}}Body"), f"{{{env}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"soap:{code}"
    etree.SubElement(fault, "faultstring").text = text
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


class Refused(Exception):
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
            raise Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode()) from None
        raise Refused("400 Bad Request", b"The request body could not be read\n") from None


def _read_capped(environ: dict[str, Any], limit: int) -> bytes:
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            raise Refused("400 Bad Request", b"Malformed Content-Length\n") from None
        if length > limit:
            raise Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode())
        return bytes(stream.read(length)) if length > 0 else b""
    body = bytes(stream.read(limit + 1))  # chunked or unknown length: read at most one byte too many
    if len(body) > limit:
        raise Refused("413 Payload Too Large", f"Request body larger than {limit} bytes\n".encode())
    return body


def _bad_body(text: str) -> Refused:
    """400 with a SOAP Client fault whose text says what is wrong with the body (the Web Connector shows it)."""
    return Refused("400 Bad Request", soap_fault("Client", text), "text/xml; charset=utf-8", reason=text)


def _clip(text: str, limit: int = _FAULT_DETAIL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_xml(body: bytes, content_type: str = "") -> None:
    """Refuse, with a fault that says why, what is not one plain UTF-8 SOAP 1.1 envelope.

    In order: a body at all; UTF-8 (Content-Type charset, XML declaration, the bytes themselves);
    well-formed XML; no DTD, hence no entity to expand or fetch (XXE); a SOAP 1.1 ``Envelope`` root.

    Raises:
        Refused: 400 with a SOAP Client fault.
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


class _AfterResponse(list[bytes]):
    """A response body whose ``close()`` (called by the server once the body is sent) runs ``after``."""

    def __init__(self, body: list[bytes], after: Callable[[], None]) -> None:
        super().__init__(body)
        self._after = after

    def close(self) -> None:
        self._after()


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
        return _AfterResponse([chunks], housekeeping)

    def housekeeping() -> None:
        # After the answer went out: the state file's write-ahead log is folded back here, not in a call.
        store = getattr(holder.get("svc"), "store", None)
        if store is None:
            return
        with lock:
            try:
                store.checkpoint_if_due()
            except Exception:  # housekeeping never fails a call that was already answered
                log.warning("could not fold the state file's write-ahead log back; it is retried", exc_info=True)

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
        except Refused as refusal:
            log.warning("refused %s %s: %s%s", method, path, refusal.status,
                        f" ({refusal.reason})" if refusal.reason else "")
            return respond(start_response, refusal.status, refusal.body, refusal.content_type)
        except Exception:  # a bug in this layer: log it, answer a fault QBWC can show
            log.exception("unexpected error serving %s %s", method, path)
            return respond(start_response, "500 Internal Server Error",
                           soap_fault("Server", "ml-connector hit an internal error; see its log file."),
                           "text/xml; charset=utf-8")

    return app
