"""A SOAP body the endpoint cannot read gets a 400 with a Client fault that says what was wrong, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from lxml import etree

from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.soap.server import RunningServer, make_wsgi_app, running_server
from mlconnector.soap.session import QbwcService
from mlconnector.store import Store

from .qbwc_support import ListWork, settings

pytestmark = pytest.mark.slow

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
UTF8 = "text/xml; charset=utf-8"
CLIENT_VERSION = WebConnector.envelope("clientVersion", [("strVersion", "2.3.0.215 café")])


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = Store.open(tmp_path_factory.mktemp("faults") / "state.db")
    with running_server(make_wsgi_app(lambda: QbwcService(store, ListWork(), settings()))) as server:
        yield server
    store.close()


def post(srv: RunningServer, body: bytes, content_type: str = UTF8) -> requests.Response:
    return requests.post(srv.soap_url, data=body, timeout=10, headers={
        "Content-Type": content_type, "SOAPAction": '"http://developer.intuit.com/clientVersion"'})


def fault_text(response: requests.Response) -> str:
    """The faultstring of a 400 Client fault (checking status, content type and fault code on the way)."""
    assert response.status_code == 400
    assert response.headers["Content-Type"] == UTF8
    fault = etree.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None and fault.findtext("faultcode") == "soap:Client"
    return str(fault.findtext("faultstring"))


def test_a_valid_utf8_envelope_is_answered(srv: RunningServer) -> None:
    response = post(srv, CLIENT_VERSION)
    assert response.status_code == 200 and b"clientVersionResult" in response.content


def test_an_empty_body(srv: RunningServer) -> None:
    assert fault_text(post(srv, b"")) == "The request body is empty; a SOAP envelope was expected."


def test_bytes_that_are_not_utf8_are_named_with_their_offset(srv: RunningServer) -> None:
    body = CLIENT_VERSION.replace("café".encode(), "café".encode("latin-1"))
    offset = body.index(b"\xe9")
    assert fault_text(post(srv, body)) == (
        f"The request body is not valid UTF-8: byte 0xE9 at offset {offset} (invalid continuation byte).")


def test_a_declared_encoding_other_than_utf8(srv: RunningServer) -> None:
    body = CLIENT_VERSION.replace(b"encoding='utf-8'", b"encoding='ISO-8859-1'")
    assert body != CLIENT_VERSION
    assert fault_text(post(srv, body)) == (
        'The XML declaration says encoding="ISO-8859-1"; send the SOAP request as UTF-8 (encoding="utf-8").')


def test_a_content_type_charset_other_than_utf8(srv: RunningServer) -> None:
    assert fault_text(post(srv, CLIENT_VERSION, "text/xml; charset=windows-1252")) == (
        "The Content-Type header declares charset=windows-1252; send the SOAP request as UTF-8 (charset=utf-8).")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32"])
def test_a_utf16_or_utf32_body(srv: RunningServer, codec: str) -> None:
    body = CLIENT_VERSION.decode("utf-8").replace("utf-8", codec).encode(codec)
    assert fault_text(post(srv, body)) == "The request body is UTF-16 or UTF-32; send the SOAP request as UTF-8."


def test_xml_that_is_not_well_formed_says_where(srv: RunningServer) -> None:
    assert fault_text(post(srv, b"<soap:Envelope")) == (
        "The request is not well-formed XML: Namespace prefix soap on Envelope is not defined, line 1, column 15")
    text = fault_text(post(srv, CLIENT_VERSION.replace(b"</strVersion>", b"</strVersio>")))
    assert text.startswith("The request is not well-formed XML: Opening and ending tag mismatch: strVersion")
    assert text.endswith(", line 2, column 271")


def test_a_parser_message_quotes_no_more_than_a_short_snippet_of_the_body(srv: RunningServer) -> None:
    name = b"x" * 5000
    text = fault_text(post(srv, b"<" + name + b"></" + name + b"y>"))
    assert text.startswith("The request is not well-formed XML: ") and len(text) <= 200
    assert text.endswith("...") and "x" * 200 not in text


def test_a_dtd_is_refused_and_no_entity_is_expanded(srv: RunningServer) -> None:
    body = CLIENT_VERSION.replace(
        b"?>", b'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1).replace("café".encode(), b"&e;")
    text = fault_text(post(srv, body))
    assert text == "Document type declarations are not allowed in SOAP messages."


def test_xml_that_is_not_a_soap_envelope(srv: RunningServer) -> None:
    assert fault_text(post(srv, b"<clientVersion xmlns='http://developer.intuit.com/'/>")) == (
        "The request is XML but not a SOAP 1.1 envelope: the root element is clientVersion in namespace "
        f"http://developer.intuit.com/; expected Envelope in namespace {SOAP_ENV}.")
    assert "no namespace" in fault_text(post(srv, b"<Envelope/>"))


def test_a_soap12_envelope_is_named_as_such(srv: RunningServer) -> None:
    body = CLIENT_VERSION.replace(SOAP_ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope")
    assert fault_text(post(srv, body)).startswith("The request is a SOAP 1.2 envelope; this endpoint speaks SOAP 1.1")


def test_the_refusal_is_logged_with_its_reason(srv: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    post(srv, b"")
    assert ("refused POST /qbwc: 400 Bad Request (The request body is empty; a SOAP envelope was expected.)"
            in caplog.messages)

