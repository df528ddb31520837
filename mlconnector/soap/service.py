"""The Spyne service: SOAP names and types exactly as the Web Connector's WSDL, each call one line into session.py.

Namespace ``http://developer.intuit.com/``, document/literal wrapped, ``<method>Response`` /
``<method>Result``; ``authenticateResult`` is an ``ArrayOfString`` whose empty items are written as
explicit empty ``<string></string>`` elements (QBWC needs them, PEERS.md); ``receiveResponseXMLResult``
is an ``int``. Parameter names are the WSDL's: Spyne derives the element names from them.

Spyne parses with entities and the network off (its defaults, restated here); ``server.py`` also
refuses any document type declaration before Spyne sees the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lxml import etree

from mlconnector.errors import QbwcSessionError
from mlconnector.soap.compat import ensure_spyne_importable
from mlconnector.soap.session import QbwcService

ensure_spyne_importable()

from spyne import Application, Array, Fault, Integer32, ServiceBase, Unicode, rpc  # noqa: E402
from spyne.interface.wsdl import Wsdl11  # noqa: E402
from spyne.protocol.soap import Soap11  # noqa: E402

import spyne.const  # noqa: E402

# Spyne runs a full gc.collect() at the end of a call at most once a second, to hand back the file
# descriptors of uploads; we take none, and each such collection put a 70 ms pause inside a Web Connector
# call. Python's own generational collector still runs as usual.
spyne.const.MIN_GC_INTERVAL = float("inf")

log = logging.getLogger("mlconnector.soap.service")

TNS = "http://developer.intuit.com/"
SERVICE_NAME = "QBWebConnectorSvc"
METHODS = (
    "serverVersion", "clientVersion", "authenticate", "sendRequestXML", "receiveResponseXML",
    "connectionError", "getLastError", "closeConnection", "getInteractiveURL", "interactiveDone",
    "interactiveRejected",
)

_In = Unicode(min_occurs=0)
_Out = Unicode(min_occurs=0, nillable=False)
_Int = Integer32(min_occurs=1, nillable=False)
ArrayOfString = Array(Unicode(nillable=False), type_name="ArrayOfString").customize(nillable=False, min_occurs=0)

_NS_WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"
_NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"


def _qbwc(ctx: Any) -> QbwcService:
    service = ctx.udc
    if not isinstance(service, QbwcService):  # wiring bug, not a client error
        raise RuntimeError("no QbwcService bound to this request")
    return service


def _text(value: str | None) -> str:
    return value or ""


class QBWebConnectorSvc(ServiceBase):  # type: ignore[misc]
    """The eleven Web Connector operations."""

    @rpc(_In, _returns=_Out)
    def serverVersion(ctx: Any, strVersion: str | None) -> str:  # noqa: N802,N803
        return _qbwc(ctx).server_version()

    @rpc(_In, _returns=_Out)
    def clientVersion(ctx: Any, strVersion: str | None) -> str:  # noqa: N802,N803
        return _qbwc(ctx).client_version(_text(strVersion))

    @rpc(_In, _In, _returns=ArrayOfString)
    def authenticate(ctx: Any, strUserName: str | None, strPassword: str | None) -> list[str]:  # noqa: N803
        try:
            return _qbwc(ctx).authenticate(_text(strUserName), _text(strPassword))
        except QbwcSessionError as exc:  # already logged and audited by the session
            raise Fault("Server", exc.message) from None

    @rpc(_In, _In, _In, _In, _Int, _Int, _returns=_Out)
    def sendRequestXML(  # noqa: N802
        ctx: Any, ticket: str | None, strHCPResponse: str | None, strCompanyFileName: str | None,  # noqa: N803
        qbXMLCountry: str | None, qbXMLMajorVers: int | None, qbXMLMinorVers: int | None,  # noqa: N803
    ) -> str:
        return _qbwc(ctx).send_request_xml(
            _text(ticket), _text(strHCPResponse), _text(strCompanyFileName), _text(qbXMLCountry),
            qbXMLMajorVers, qbXMLMinorVers,
        )

    @rpc(_In, _In, _In, _In, _returns=_Int)
    def receiveResponseXML(  # noqa: N802
        ctx: Any, ticket: str | None, response: str | None, hresult: str | None, message: str | None
    ) -> int:
        return _qbwc(ctx).receive_response_xml(_text(ticket), _text(response), _text(hresult), _text(message))

    @rpc(_In, _In, _In, _returns=_Out)
    def connectionError(ctx: Any, ticket: str | None, hresult: str | None, message: str | None) -> str:  # noqa: N802
        return _qbwc(ctx).connection_error(_text(ticket), _text(hresult), _text(message))

    @rpc(_In, _returns=_Out)
    def getLastError(ctx: Any, ticket: str | None) -> str:  # noqa: N802
        return _qbwc(ctx).get_last_error(_text(ticket))

    @rpc(_In, _returns=_Out)
    def closeConnection(ctx: Any, ticket: str | None) -> str:  # noqa: N802
        return _qbwc(ctx).close_connection(_text(ticket))

    @rpc(_In, _In, _returns=_Out)
    def getInteractiveURL(ctx: Any, wcTicket: str | None, sessionID: str | None) -> str:  # noqa: N802,N803
        return _qbwc(ctx).get_interactive_url(_text(wcTicket), _text(sessionID))

    @rpc(_In, _returns=_Out)
    def interactiveDone(ctx: Any, wcTicket: str | None) -> str:  # noqa: N802,N803
        return _qbwc(ctx).interactive_done(_text(wcTicket))

    @rpc(_In, _In, _returns=_Out)
    def interactiveRejected(ctx: Any, wcTicket: str | None, reason: str | None) -> str:  # noqa: N802,N803
        return _qbwc(ctx).interactive_rejected(_text(wcTicket), _text(reason))


def make_application(service: Callable[[], QbwcService]) -> Any:
    """The Spyne Application; ``service()`` gives the QbwcService each call is bound to."""
    application = Application(
        [QBWebConnectorSvc],
        tns=TNS,
        name=SERVICE_NAME,
        # No schema validation: QBWC omits optional elements freely, and a strict validator would turn
        # that into faults QBWC cannot act on. Entities, DTDs and the network stay off.
        in_protocol=Soap11(validator=None, resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False),
        out_protocol=Soap11(),
    )

    def bind(ctx: Any) -> None:
        ctx.udc = service()

    def log_exception(ctx: Any) -> None:
        # Session methods never raise except authenticate (already audited); anything else reaching
        # here is a bug in this thin layer and must not vanish into a bare fault.
        error = getattr(ctx, "out_error", None)
        if error is not None and not isinstance(error, Fault):
            log.error("SOAP call %s failed: %r", getattr(ctx, "method_request_string", "?"), error)

    application.event_manager.add_listener("method_call", bind)
    application.event_manager.add_listener("method_exception_object", log_exception)
    return application


def wsdl_document(application: Any, url: str) -> bytes:
    """The service's WSDL with ``url`` as its address and QBWC's SOAPAction values.

    Spyne writes the bare operation name as soapAction; the Web Connector sends
    ``http://developer.intuit.com/<method>``, so the generated document is corrected to say that.
    """
    wsdl = Wsdl11(application.interface)
    wsdl.build_interface_document(url)
    root = etree.fromstring(wsdl.get_interface_document(), etree.XMLParser(resolve_entities=False, no_network=True))
    for operation in root.iter(f"{{{_NS_WSDL_SOAP}}}operation"):
        name = operation.getparent().get("name")
        operation.set("soapAction", f"{TNS}{name}")
    for address in root.iter(f"{{{_NS_WSDL_SOAP}}}address"):
        address.set("location", url)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))
