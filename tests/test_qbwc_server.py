"""The SOAP endpoint over real HTTP on a loopback port: WSDL conformance, the samples, and refusals."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from lxml import etree

from mlconnector.sandbox.webconnector import WebConnector, WebConnectorError
from mlconnector.soap.server import RunningServer, make_wsgi_app, running_server
from mlconnector.soap.service import METHODS, TNS
from mlconnector.soap.session import QbwcService
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

from .qbwc_support import COMPANY, PASSWORD, USER, Clock, ListWork, settings

BILL = '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError"/></QBXML>'
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_NS = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "s": "http://www.w3.org/2001/XMLSchema"}


@dataclass
class Env:
    srv: RunningServer
    work: ListWork
    store: Store
    clock: Clock

    def wc(self, **options: object) -> WebConnector:
        return WebConnector(self.srv.soap_url, USER, PASSWORD, quickbooks=lambda rq: "<QBXML>ok</QBXML>",
                            **options)  # type: ignore[arg-type]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    clock = Clock()
    store = Store.open(tmp_path / "state.db", now=clock)
    work = ListWork([BILL])
    app = make_wsgi_app(lambda: QbwcService(store, work, settings(), now=clock))
    with running_server(app) as srv:
        yield Env(srv, work, store, clock)
    store.close()


@pytest.fixture(scope="module")
def wsdl_path(reference_dir: Path) -> Path:
    return reference_dir / "qbwc" / "QBWebConnectorSvc.wsdl"


@pytest.fixture(scope="module")
def wsdl_schema(wsdl_path: Path) -> etree.XMLSchema:
    """The XML schema embedded in Intuit's WSDL, standing alone."""
    root = etree.parse(str(wsdl_path)).getroot()
    embedded = root.find("wsdl:types/s:schema", WSDL_NS)
    # A copy loses the WSDL root's prefix declarations that QName attributes (tns:ArrayOfString) need.
    schema = etree.Element(embedded.tag, dict(embedded.attrib), nsmap={"s": WSDL_NS["s"], "tns": TNS})
    schema.extend(copy.deepcopy(child) for child in embedded)
    return etree.XMLSchema(schema)


def body_child(content: bytes) -> etree._Element:
    root = etree.fromstring(content)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    return root.find(f"{{{SOAP_ENV}}}Body")[0]


# ----------------------------------------------------------------------------- zeep and the WSDL


def test_zeep_with_the_official_wsdl_calls_every_method(env: Env, wsdl_path: Path) -> None:
    import zeep

    client = zeep.Client(str(wsdl_path))
    svc = client.create_service(f"{{{TNS}}}QBWebConnectorSvcSoap", env.srv.soap_url)
    assert svc.serverVersion().startswith("ml-connector")
    assert svc.clientVersion("2.3.0.215") is None or svc.clientVersion("2.3.0.215") == ""
    result = svc.authenticate(USER, PASSWORD)
    ticket, company = result
    assert ticket and company == COMPANY
    request = svc.sendRequestXML(ticket, "", COMPANY, "US", 13, 0)
    assert request == BILL
    assert svc.receiveResponseXML(ticket, "<QBXML/>", "", "") == 100
    assert svc.getLastError(ticket) == "No error."
    assert svc.closeConnection(ticket).startswith("ml-connector: 1 request(s) sent")
    assert svc.connectionError(ticket, "0x80040408", "Could not start QuickBooks.") == "done"
    assert svc.authenticate(USER, "wrong") == [None, "nvu"] or svc.authenticate(USER, "wrong")[1] == "nvu"


def test_zeep_sees_an_empty_first_string_in_the_none_answer(env: Env, wsdl_path: Path) -> None:
    import zeep

    env.work.queue.clear()
    client = zeep.Client(str(wsdl_path))
    svc = client.create_service(f"{{{TNS}}}QBWebConnectorSvcSoap", env.srv.soap_url)
    assert [s or "" for s in svc.authenticate(USER, PASSWORD)] == ["", "none"]


def test_the_raw_sample_envelopes_are_accepted_and_answers_validate(
    env: Env, reference_dir: Path, wsdl_schema: etree.XMLSchema
) -> None:
    samples = sorted((reference_dir / "qbwc" / "soap-samples").glob("*.request.xml"))
    assert len(samples) == 12
    in_wsdl = {"serverVersion", "clientVersion", "authenticate", "sendRequestXML", "receiveResponseXML",
               "connectionError", "getLastError", "closeConnection"}
    for sample in samples:
        method = etree.parse(str(sample)).getroot().find(f"{{{SOAP_ENV}}}Body")[0].tag.split("}")[1]
        response = requests.post(
            env.srv.soap_url, data=sample.read_bytes(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{TNS}{method}"'},
        )
        assert response.status_code == 200, (sample.name, response.text)
        assert response.headers["Content-Type"].startswith("text/xml")
        child = body_child(response.content)
        assert child.tag == f"{{{TNS}}}{method}Response", sample.name
        assert child[0].tag == f"{{{TNS}}}{method}Result"
        if method in in_wsdl:
            wsdl_schema.assertValid(child)


def test_the_authenticate_answer_has_explicit_empty_string_items(env: Env) -> None:
    env.work.queue.clear()
    wc = env.wc()
    response = wc.post("authenticate", wc.envelope("authenticate", [("strUserName", USER), ("strPassword", PASSWORD)]))
    strings = body_child(response.content).findall(f"{{{TNS}}}authenticateResult/{{{TNS}}}string")
    assert [s.text or "" for s in strings] == ["", "none"]
    assert b"nil" not in response.content


def test_the_wsdl_is_served_with_intuits_names_and_soap_actions(env: Env) -> None:
    response = requests.get(env.srv.soap_url + "?wsdl")
    assert response.status_code == 200
    root = etree.fromstring(response.content)
    assert root.get("targetNamespace") == TNS
    ops = {op.get("name") for op in root.iterfind("wsdl:portType/wsdl:operation", WSDL_NS)}
    assert ops == set(METHODS)
    actions = {el.get("soapAction") for el in root.iter("{http://schemas.xmlsoap.org/wsdl/soap/}operation")}
    assert actions == {f"{TNS}{m}" for m in METHODS}
    address = root.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address is not None and address.get("location") == env.srv.soap_url


def test_zeep_with_the_served_wsdl_calls_all_eleven_methods(env: Env) -> None:
    import zeep

    svc = zeep.Client(env.srv.soap_url + "?wsdl").service
    assert svc.serverVersion().startswith("ml-connector")
    assert (svc.clientVersion("2.3.0.215") or "") == ""
    ticket, company = svc.authenticate(USER, PASSWORD)
    assert company == COMPANY
    assert svc.sendRequestXML(ticket, "<HCP/>", COMPANY, "US", 13, 0) == BILL
    assert svc.receiveResponseXML(ticket, "<QBXML/>", "", "") == 100
    assert svc.getLastError(ticket) == "No error."
    assert svc.closeConnection(ticket).startswith("ml-connector:")
    assert svc.connectionError(ticket, "0x80040401", "x") == "done"
    assert (svc.getInteractiveURL(ticket, "{0}") or "") == ""
    assert svc.interactiveDone(ticket) == "Done"
    assert "interactive" in svc.interactiveRejected(ticket, "User declined")


def test_every_answer_of_a_real_session_validates_against_intuits_schema(
    env: Env, wsdl_schema: etree.XMLSchema
) -> None:
    wc = env.wc()
    calls = [
        ("serverVersion", []),
        ("clientVersion", [("strVersion", "2.3.0.215")]),
        ("authenticate", [("strUserName", USER), ("strPassword", PASSWORD)]),
    ]
    answers = {}
    for method, params in calls:
        answers[method] = body_child(wc.post(method, wc.envelope(method, params)).content)
    ticket = answers["authenticate"][0][0].text
    for method, params in [
        ("sendRequestXML", [("ticket", ticket), ("strHCPResponse", "<HCP/>"), ("strCompanyFileName", COMPANY),
                            ("qbXMLCountry", "US"), ("qbXMLMajorVers", 13), ("qbXMLMinorVers", 0)]),
        ("receiveResponseXML", [("ticket", ticket), ("response", "<QBXML/>"), ("hresult", ""), ("message", "")]),
        ("getLastError", [("ticket", ticket)]),
        ("closeConnection", [("ticket", ticket)]),
        ("connectionError", [("ticket", ticket), ("hresult", "0x80040408"), ("message", "x")]),
    ]:
        answers[method] = body_child(wc.post(method, wc.envelope(method, params)).content)
    for method, answer in answers.items():
        wsdl_schema.assertValid(answer)
    assert answers["sendRequestXML"][0].text == BILL  # escaped on the wire, the same text after parsing
    assert answers["receiveResponseXML"][0].text == "100"


# ------------------------------------------------------------------------- handshake over HTTP


def test_handshake_paths_over_http(env: Env) -> None:
    wc = env.wc()
    ticket, company = wc.authenticate()
    assert ticket and company == COMPANY
    assert wc.send_request_xml(ticket, "<HCP/>") == BILL
    assert wc.authenticate() == ["", "busy"]  # a request of the first session is inside QuickBooks
    assert wc.authenticate(password="wrong") == ["", "nvu"]
    wc.close_connection(ticket)
    env.work.queue.clear()
    assert wc.authenticate() == ["", "none"]


def test_stale_ticket_over_http_is_refused_not_crashed(env: Env) -> None:
    wc = env.wc()
    ticket = wc.authenticate()[0]
    env.clock.advance(minutes=31)
    assert wc.send_request_xml(ticket) == ""
    assert "expired" in wc.get_last_error(ticket)
    assert wc.receive_response_xml(ticket, "<QBXML/>") == -1


def test_login_attempts_are_rate_limited_over_http(env: Env) -> None:
    wc = env.wc()
    for _ in range(5):
        assert wc.authenticate(password="guess")[1] == "nvu"
    assert wc.authenticate()[1] == "nvu"
    refused = env.store.audit.rows(event=AuditEvent.LOGIN_REFUSED)
    assert len(refused) == 6 and "guess" not in str([r.detail for r in refused])


def test_getlasterror_noop_and_close_over_http(env: Env) -> None:
    wc = env.wc()
    ticket = wc.authenticate()[0]
    env.work.queue.clear()
    assert wc.send_request_xml(ticket) == ""
    assert wc.get_last_error(ticket) == "ml-connector has nothing more to send."
    assert wc.close_connection(ticket).startswith("ml-connector: 0 request(s)")


def test_connection_error_over_http_answers_done(env: Env) -> None:
    wc = env.wc()
    ticket = wc.authenticate()[0]
    assert wc.connection_error(ticket, "0x80040408", "Could not start QuickBooks.") == "done"
    assert env.store.audit.rows(event=AuditEvent.SESSION_ERROR)[-1].detail["hresult"] == "0x80040408"


def test_a_new_login_while_awaiting_an_answer_calls_on_session_lost(env: Env) -> None:
    wc = env.wc()
    old = wc.authenticate()[0]
    assert wc.send_request_xml(old, "<HCP/>") == BILL
    assert wc.authenticate() == ["", "busy"]
    env.clock.advance(minutes=10)  # the takeover window
    new = wc.authenticate()[0]
    assert new and new != old and env.work.lost == [old]
    assert wc.send_request_xml(new) == BILL  # the lost request went back to the queue


# ------------------------------------------------------------------------------------- refusals


def test_an_oversized_body_gets_413(env: Env) -> None:
    big = b"<a>" + b"x" * (10 * 1024 * 1024 + 10) + b"</a>"
    response = requests.post(env.srv.soap_url, data=big, headers={"Content-Type": "text/xml"})
    assert response.status_code == 413


def test_an_oversized_chunked_body_gets_413_from_the_app(env: Env) -> None:
    from mlconnector.soap.server import MAX_BODY_BYTES

    def chunks() -> Iterator[bytes]:
        yield b"<a>"
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"x" * 65536
        yield b"</a>"

    response = requests.post(env.srv.soap_url, data=chunks(), headers={"Content-Type": "text/xml"})
    assert response.status_code == 413


XXE = b"""<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<clientVersion xmlns="http://developer.intuit.com/"><strVersion>&e;</strVersion></clientVersion>
</soap:Body></soap:Envelope>"""


@pytest.mark.parametrize("payload", [
    XXE,
    XXE.replace(b'SYSTEM "file:///etc/passwd"', b'"inside"'),
    XXE.replace(b"clientVersion", b"authenticate").replace(b"strVersion", b"strUserName"),
])
def test_an_xxe_payload_is_refused_and_leaks_nothing(env: Env, payload: bytes) -> None:
    response = requests.post(env.srv.soap_url, data=payload,
                             headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{TNS}clientVersion"'})
    assert response.status_code == 400
    assert b"root:" not in response.content and b"inside" not in response.content
    assert b"Document type declarations are not allowed" in response.content


def test_malformed_xml_is_a_client_fault(env: Env) -> None:
    response = requests.post(env.srv.soap_url, data=b"<soap:Envelope", headers={"Content-Type": "text/xml"})
    assert response.status_code == 400 and b"Fault" in response.content


def test_support_page_is_200_and_unknown_paths_404(env: Env) -> None:
    support = requests.get(env.srv.base_url + "/support")
    assert support.status_code == 200 and "text/html" in support.headers["Content-Type"]
    assert "ml-connector" in support.text
    assert requests.get(env.srv.base_url + "/nope").status_code == 404
    assert requests.get(env.srv.soap_url).status_code == 405


def test_a_fault_from_authenticate_is_logged_and_audited(env: Env) -> None:
    env.work.raise_in = "has_work"
    with pytest.raises(WebConnectorError, match="could not check this login"):
        env.wc().authenticate()
    assert env.store.audit.rows(event=AuditEvent.SESSION_ERROR)[-1].detail["call"] == "authenticate"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
# The plain-HTTP probe makes cheroot drop a half-open TLS connection; on 3.13 its buffered writer then
# complains while being garbage-collected. That is cheroot's cleanup, not a failure of ours.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_tls_with_a_certificate_and_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    store = Store.open(tmp_path / "state.db")
    app = make_wsgi_app(lambda: QbwcService(store, ListWork(), settings()))
    with running_server(app, certfile=str(cert), keyfile=str(key)) as srv:
        assert srv.soap_url.startswith("https://")
        wc = WebConnector(srv.soap_url, USER, PASSWORD, verify=str(cert))
        assert wc.authenticate() == ["", "none"]
        with pytest.raises(WebConnectorError):
            WebConnector(srv.soap_url.replace("https", "http"), USER, PASSWORD, timeout=5).authenticate()
    store.close()
