"""A stand-in for the QuickBooks Web Connector: drives a QBWC SOAP endpoint over real HTTP.

Envelopes are shaped like the ones QBWC sends (``soap:`` prefix, the method wrapper in the default
namespace ``http://developer.intuit.com/``, quoted ``SOAPAction``, ``text/xml; charset=utf-8``), and the
call sequence follows the Programmer's Guide: serverVersion, clientVersion, authenticate, then
sendRequestXML → QuickBooks → receiveResponseXML until 100, getLastError after ``""`` or a negative
answer, closeConnection. The first sendRequestXML carries a Host/Company/Preferences response.

``Faults`` switches simulate what goes wrong in the field: the answer lost after QuickBooks applied
the request (the driver then stops as if it crashed: no closeConnection), QuickBooks refusing a
request with an hresult, or QuickBooks not starting (connectionError).

Usage::

    wc = WebConnector(url, "acme-qbwc", "s3cret", quickbooks=simulator.process_request)
    summary = wc.run()
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from lxml import etree

from mlconnector.errors import MlConnectorError
from mlconnector.sandbox.quickbooks import ProcessRequestError

TNS = "http://developer.intuit.com/"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
USER_AGENT = "Mozilla/4.0 (compatible; MSIE 6.0; MS Web Services Client Protocol 2.0.50727.1433)"
PARSE_ERROR_HRESULT = "0x80040400"
PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)

DEFAULT_HCP_RESPONSE = (
    '<?xml version="1.0" ?>\n<QBXML>\n<QBXMLMsgsRs>\n'
    '<HostQueryRs requestID="0" statusCode="0" statusSeverity="Info" statusMessage="Status OK">\n'
    "<HostRet><ProductName>QuickBooks Enterprise Solutions: Accountant 24.0</ProductName>"
    "<MajorVersion>34</MajorVersion><MinorVersion>0</MinorVersion><Country>US</Country>"
    "<SupportedQBXMLVersion>1.0</SupportedQBXMLVersion><SupportedQBXMLVersion>13.0</SupportedQBXMLVersion>"
    "<SupportedQBXMLVersion>16.0</SupportedQBXMLVersion><IsAutomaticLogin>true</IsAutomaticLogin>"
    "<QBFileMode>SingleUser</QBFileMode></HostRet>\n</HostQueryRs>\n"
    '<CompanyQueryRs requestID="1" statusCode="0" statusSeverity="Info" statusMessage="Status OK">\n'
    "<CompanyRet><IsSampleCompany>false</IsSampleCompany><CompanyName>Acme Corp</CompanyName>"
    "<LegalCompanyName>Acme Corp</LegalCompanyName></CompanyRet>\n</CompanyQueryRs>\n"
    '<PreferencesQueryRs requestID="2" statusCode="0" statusSeverity="Info" statusMessage="Status OK">\n'
    "<PreferencesRet><AccountingPreferences><IsUsingAccountNumbers>false</IsUsingAccountNumbers>"
    "<IsRequiringAccounts>true</IsRequiringAccounts><IsUsingClassTracking>true</IsUsingClassTracking>"
    "<IsUsingAuditTrail>true</IsUsingAuditTrail><IsAssigningJournalEntryNumbers>false</IsAssigningJournalEntryNumbers>"
    "</AccountingPreferences></PreferencesRet>\n</PreferencesQueryRs>\n</QBXMLMsgsRs>\n</QBXML>\n"
)


class WebConnectorError(MlConnectorError):
    """The endpoint answered something the Web Connector could not use (HTTP error, fault, bad XML)."""

    def __init__(self, message: str, *, status: int | None = None, fault: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.fault = fault


@dataclass
class Faults:
    """What to break during :meth:`WebConnector.run` (round numbers count sendRequestXML calls from 1)."""

    drop_response_on: int | None = None  # QuickBooks applies request N, its answer never reaches the server
    hresult_on: int | None = None  # QuickBooks refuses request N as unparsable (nothing applied)
    connection_error: tuple[str, str] | None = None  # (hresult, message) instead of opening QuickBooks
    swap_request_ids_on: int | None = None  # the answer to request N reaches the server with requestIDs swapped
    stop_after: int | None = None  # the run ends after answering request N (serve killed between calls)


@dataclass
class RunSummary:
    """What one Web Connector run did."""

    auth_status: str = ""
    ticket: str = ""
    calls: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    server_version: str = ""
    client_version_answer: str = ""
    last_error: str | None = None
    close_message: str | None = None
    stopped: str = ""  # done | none | nvu | busy | error | crashed | connection_error | noop_limit

    @property
    def round_trips(self) -> int:
        """sendRequestXML calls that carried a request to QuickBooks."""
        return len(self.requests)


class WebConnector:
    """Talks to a QBWC endpoint the way the Windows Web Connector does.

    Args:
        url: the AppURL (``http://127.0.0.1:PORT/qbwc``).
        username, password: what the user typed into the Web Connector.
        quickbooks: turns a qbXML request into QuickBooks' qbXML response (the simulator's
            ``process_request``); raising :class:`ProcessRequestError` sends its hresult instead.
        hcp_response: the Host/Company/Preferences response sent with the first sendRequestXML.
        company_file: the file QuickBooks has open (sent when authenticate answers ``""``).
        noop_delay: seconds to wait after ``NoOp`` (QBWC waits 5; tests use 0).
    """

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        quickbooks: Callable[[str], str] | None = None,
        hcp_response: str = DEFAULT_HCP_RESPONSE,
        company_file: str = r"C:\Users\Public\Documents\Intuit\QuickBooks\Company Files\Acme.QBW",
        client_version: str = "2.3.0.215",
        qbxml_version: tuple[int, int] = (13, 0),
        country: str = "US",
        noop_delay: float = 0.0,
        max_noops: int = 20,
        max_rounds: int = 100_000,
        session: requests.Session | None = None,
        verify: bool | str = True,
        timeout: float = 100.0,
    ) -> None:
        self.url = url
        self.username = username
        self.password = password
        self.quickbooks = quickbooks
        self.hcp_response = hcp_response
        self.company_file = company_file
        self.client_version_text = client_version
        self.qbxml_version = qbxml_version
        self.country = country
        self.noop_delay = noop_delay
        self.max_noops = max_noops
        self.max_rounds = max_rounds
        self.http = session or requests.Session()
        self.verify = verify
        self.timeout = timeout

    # ------------------------------------------------------------------------- envelopes

    @staticmethod
    def envelope(method: str, params: Sequence[tuple[str, str | int | None]]) -> bytes:
        """The SOAP request body QBWC would send for ``method`` with ``params`` (in WSDL order)."""
        env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "xsi": XSI, "xsd": XSD})
        body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
        wrapper = etree.SubElement(body, f"{{{TNS}}}{method}", nsmap={None: TNS})
        for name, value in params:
            child = etree.SubElement(wrapper, f"{{{TNS}}}{name}")
            if value is not None:
                child.text = str(value)
        return bytes(etree.tostring(env, xml_declaration=True, encoding="utf-8"))

    def post(self, method: str, body: bytes) -> requests.Response:
        """POST a SOAP body with QBWC's headers."""
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{TNS}{method}"',
            "User-Agent": USER_AGENT,
            "Expect": "100-continue",
        }
        return self.http.post(self.url, data=body, headers=headers, timeout=self.timeout, verify=self.verify)

    def call(self, method: str, *params: tuple[str, str | int | None]) -> etree._Element | None:
        """One SOAP call; returns the ``<method>Result`` element (None when absent).

        Raises:
            WebConnectorError: HTTP error, SOAP fault, or a response QBWC could not read.
        """
        try:
            response = self.post(method, self.envelope(method, list(params)))
        except requests.RequestException as exc:
            raise WebConnectorError(f"{method}: could not reach {self.url}: {exc}") from exc
        try:
            root = etree.fromstring(response.content, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise WebConnectorError(f"{method}: response is not well-formed XML (HTTP {response.status_code})",
                                    status=response.status_code) from exc
        fault = root.find(f".//{{{SOAP_ENV}}}Fault")
        if fault is not None:
            text = fault.findtext("faultstring") or ""
            raise WebConnectorError(f"{method}: SOAP fault: {text}", status=response.status_code, fault=text)
        if response.status_code != 200:
            raise WebConnectorError(f"{method}: HTTP {response.status_code}", status=response.status_code)
        wrapper = root.find(f".//{{{SOAP_ENV}}}Body/{{{TNS}}}{method}Response")
        if wrapper is None:
            raise WebConnectorError(f"{method}: no {method}Response in {TNS}", status=response.status_code)
        return wrapper.find(f"{{{TNS}}}{method}Result")

    def _text(self, method: str, *params: tuple[str, str | int | None]) -> str:
        result = self.call(method, *params)
        return (result.text or "") if result is not None else ""

    # ----------------------------------------------------------------------- the methods

    def server_version(self) -> str:
        return self._text("serverVersion")

    def client_version(self) -> str:
        return self._text("clientVersion", ("strVersion", self.client_version_text))

    def authenticate(self, username: str | None = None, password: str | None = None) -> list[str]:
        result = self.call("authenticate", ("strUserName", username if username is not None else self.username),
                           ("strPassword", password if password is not None else self.password))
        if result is None:
            raise WebConnectorError("authenticate: no authenticateResult")
        items = result.findall(f"{{{TNS}}}string")
        return [item.text or "" for item in items]

    def send_request_xml(self, ticket: str, hcp_response: str = "", company_file: str | None = None) -> str:
        major, minor = self.qbxml_version
        return self._text(
            "sendRequestXML", ("ticket", ticket), ("strHCPResponse", hcp_response),
            ("strCompanyFileName", company_file if company_file is not None else self.company_file),
            ("qbXMLCountry", self.country), ("qbXMLMajorVers", major), ("qbXMLMinorVers", minor),
        )

    def receive_response_xml(self, ticket: str, response: str = "", hresult: str = "", message: str = "") -> int:
        text = self._text("receiveResponseXML", ("ticket", ticket), ("response", response),
                          ("hresult", hresult), ("message", message))
        try:
            return int(text)
        except ValueError:
            raise WebConnectorError(f"receiveResponseXML: not an integer: {text!r}") from None

    def connection_error(self, ticket: str, hresult: str, message: str) -> str:
        return self._text("connectionError", ("ticket", ticket), ("hresult", hresult), ("message", message))

    def get_last_error(self, ticket: str) -> str:
        return self._text("getLastError", ("ticket", ticket))

    def close_connection(self, ticket: str) -> str:
        return self._text("closeConnection", ("ticket", ticket))

    # --------------------------------------------------------------------------- a run

    def run(self, faults: Faults | None = None) -> RunSummary:
        """One scheduled update, start to end, as QBWC performs it."""
        faults = faults or Faults()
        s = RunSummary()

        def note(call: str) -> None:
            s.calls.append(call)

        note("serverVersion")
        s.server_version = self.server_version()
        note("clientVersion")
        s.client_version_answer = self.client_version()
        if s.client_version_answer.startswith(("E:", "O:")):
            s.stopped = "error"
            return s
        note("authenticate")
        answer = self.authenticate()
        ticket, status = (answer + ["", ""])[:2]
        s.ticket, s.auth_status = ticket, status
        if status in ("none", "nvu", "busy"):
            note("closeConnection")
            s.close_message = self.close_connection(ticket)
            s.stopped = status
            return s
        company = status or self.company_file
        if faults.connection_error:
            note("connectionError")
            self.connection_error(ticket, *faults.connection_error)
            s.stopped = "connection_error"
            return s
        hcp = self.hcp_response
        rounds = noops = 0
        while rounds < self.max_rounds:
            note("sendRequestXML")
            request = self.send_request_xml(ticket, hcp, company)
            hcp = ""
            if not request:
                note("getLastError")
                s.last_error = self.get_last_error(ticket)
                if s.last_error == "NoOp" and noops < self.max_noops:
                    noops += 1
                    time.sleep(self.noop_delay)
                    continue
                s.stopped = "noop_limit" if s.last_error == "NoOp" else "error"
                break
            rounds += 1
            s.requests.append(request)
            if faults.hresult_on == rounds:
                note("receiveResponseXML")
                progress = self.receive_response_xml(ticket, "", PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE)
            else:
                try:
                    response = self._ask_quickbooks(request)
                except ProcessRequestError as failure:  # QuickBooks refused the whole request
                    note("receiveResponseXML")
                    progress = self.receive_response_xml(ticket, "", failure.hresult, failure.message)
                else:
                    s.responses.append(response)
                    if faults.drop_response_on == rounds:
                        s.stopped = "crashed"
                        return s
                    if faults.swap_request_ids_on == rounds:
                        response = swap_request_ids(response)
                    note("receiveResponseXML")
                    progress = self.receive_response_xml(ticket, response)
            s.progress.append(progress)
            if faults.stop_after == rounds:
                s.stopped = "stopped"
                return s
            if progress < 0:
                note("getLastError")
                s.last_error = self.get_last_error(ticket)
                s.stopped = "error"
                break
            if progress >= 100:
                s.stopped = "done"
                break
        note("closeConnection")
        s.close_message = self.close_connection(ticket)
        return s

    def _ask_quickbooks(self, request: str) -> str:
        if self.quickbooks is None:
            raise WebConnectorError("the server sent a request but no QuickBooks is attached to this Web Connector")
        return self.quickbooks(request)


def swap_request_ids(response: str) -> str:
    """The same answer with the first two responses' requestIDs exchanged (a mismatched answer)."""
    root = etree.fromstring(response.encode("utf-8"), _PARSER)
    answers = [rs for rs in root.iterfind("QBXMLMsgsRs/*") if rs.get("requestID") is not None]
    if len(answers) >= 2:
        first, second = answers[0].get("requestID"), answers[1].get("requestID")
        answers[0].set("requestID", second or "")
        answers[1].set("requestID", first or "")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8")).decode("utf-8")
