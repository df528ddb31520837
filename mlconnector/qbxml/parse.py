"""Parse qbXML responses into plain values; a malformed response raises and changes nothing.

``parse_response(text)`` returns a :class:`MessageResponse`: the message set's status (present
only with error recovery) and one :class:`RequestResponse` per ``*Rs`` element, in order, with its
requestID, status, the transactions (TxnID, EditSequence, TxnLineIDs, RefNumber), list records
(ListID, FullName, EditSequence, IsActive, Email, AccountType) and any ``ErrorRecovery`` block.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from mlconnector.errors import QbxmlParseError
from mlconnector.models import ListKind
from mlconnector.qbxml.status import Action, classify
from mlconnector.qbxml.xml import parse_xml

_LIST_RETS = {
    "AccountRet": ListKind.ACCOUNT,
    "VendorRet": ListKind.VENDOR,
    "ClassRet": ListKind.CLASS,
    "CustomerRet": ListKind.CUSTOMER,
    # An item query answers with one Ret per item type; expenses map to these.
    "ItemServiceRet": ListKind.ITEM,
    "ItemNonInventoryRet": ListKind.ITEM,
    "ItemOtherChargeRet": ListKind.ITEM,
}
_TXN_RETS = frozenset({"BillRet", "JournalEntryRet", "VendorCreditRet", "CheckRet", "CreditCardChargeRet",
                       "CreditCardCreditRet", "BillPaymentCheckRet"})


@dataclass(frozen=True)
class ListRecord:
    """One list record from a query answer."""

    kind: ListKind
    full_name: str
    list_id: str | None
    edit_sequence: str | None
    is_active: bool
    email: str | None = None
    account_type: str | None = None


@dataclass(frozen=True)
class TxnRecord:
    """One transaction from an add or query answer."""

    txn_type: str  # BillRet -> "Bill", JournalEntryRet -> "JournalEntry"
    txn_id: str
    edit_sequence: str | None
    ref_number: str | None
    txn_line_ids: tuple[str, ...]
    external_guid: str | None = None
    # A bill's: what is still owed on it and whether QuickBooks counts it paid (None when not returned).
    open_amount: Decimal | None = None
    is_paid: bool | None = None


@dataclass(frozen=True)
class ErrorRecoveryInfo:
    """The ``ErrorRecovery`` block QuickBooks attaches to an add/mod answer."""

    list_id: str | None = None
    owner_id: str | None = None
    txn_id: str | None = None
    txn_number: str | None = None
    edit_sequence: str | None = None
    external_guid: str | None = None


@dataclass(frozen=True)
class RequestResponse:
    """The answer to one request (one ``*Rs`` element)."""

    name: str  # e.g. "BillAddRs"
    request_id: str | None
    status_code: int
    status_severity: str
    status_message: str
    txns: tuple[TxnRecord, ...] = ()
    records: tuple[ListRecord, ...] = ()
    error_recovery: ErrorRecoveryInfo | None = None
    ret_count: int | None = None
    iterator_id: str | None = None
    iterator_remaining_count: int | None = None

    @property
    def action(self) -> Action:
        """What to do about this answer's status (see :mod:`mlconnector.qbxml.status`)."""
        return classify(self.status_code, self.status_severity)

    @property
    def txn_id(self) -> str | None:
        """The TxnID of the first transaction returned, if any."""
        return self.txns[0].txn_id if self.txns else None

    @property
    def edit_sequence(self) -> str | None:
        """The EditSequence of the first transaction returned, if any."""
        return self.txns[0].edit_sequence if self.txns else None

    @property
    def txn_line_ids(self) -> tuple[str, ...]:
        """The TxnLineIDs of the first transaction returned."""
        return self.txns[0].txn_line_ids if self.txns else ()


@dataclass(frozen=True)
class MessageResponse:
    """A whole ``QBXMLMsgsRs``: the message-set status and every request's answer, in order."""

    responses: tuple[RequestResponse, ...]
    message_set_status_code: int | None = None
    new_message_set_id: str | None = None

    def by_request_id(self) -> dict[str, RequestResponse]:
        """Answers keyed by requestID (answers without one are left out)."""
        return {r.request_id: r for r in self.responses if r.request_id is not None}

    @property
    def message_set_action(self) -> Action | None:
        """What the message-set status code means, when error recovery was used."""
        return None if self.message_set_status_code is None else classify(self.message_set_status_code)


def _int(value: str | None, what: str, content: bytes | str) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise QbxmlParseError(f"{what} {value!r} is not a number", content=content[:200]) from None


def _text(el: etree._Element, path: str) -> str | None:
    found = el.find(path)
    return found.text if found is not None and found.text is not None else None


def parse_response(content: bytes | str) -> MessageResponse:
    """Parse a qbXML response document (as ``receiveResponseXML`` gets it).

    Raises:
        QbxmlParseError: not well-formed, not a ``<QBXML><QBXMLMsgsRs>`` document, or a status
            attribute missing or not a number.
    """
    root = parse_xml(content)
    if root.tag != "QBXML":
        raise QbxmlParseError(f"expected a <QBXML> document, got <{root.tag}>", content=content[:200])
    msgs = root.find("QBXMLMsgsRs")
    if msgs is None:
        raise QbxmlParseError("the response has no <QBXMLMsgsRs>", content=content[:200])
    responses = tuple(_request_response(rs, content) for rs in msgs if isinstance(rs.tag, str))
    return MessageResponse(
        responses=responses,
        message_set_status_code=_int(msgs.get("messageSetStatusCode"), "messageSetStatusCode", content),
        new_message_set_id=msgs.get("newMessageSetID"),
    )


def _request_response(rs: etree._Element, content: bytes | str) -> RequestResponse:
    name = str(rs.tag)
    if not name.endswith("Rs"):
        raise QbxmlParseError(f"unexpected <{name}> in <QBXMLMsgsRs>", content=content[:200])
    code = _int(rs.get("statusCode"), f"{name} statusCode", content)
    if code is None:
        raise QbxmlParseError(f"<{name}> has no statusCode", content=content[:200])
    recovery = rs.find("ErrorRecovery")
    return RequestResponse(
        name=name,
        request_id=rs.get("requestID"),
        status_code=code,
        status_severity=rs.get("statusSeverity", ""),
        status_message=rs.get("statusMessage", ""),
        txns=tuple(_txns(rs)),
        records=tuple(_records(rs)),
        error_recovery=_error_recovery(recovery) if recovery is not None else None,
        ret_count=_int(rs.get("retCount"), "retCount", content),
        iterator_id=rs.get("iteratorID"),
        iterator_remaining_count=_int(rs.get("iteratorRemainingCount"), "iteratorRemainingCount", content),
    )


def _txns(rs: etree._Element) -> Iterator[TxnRecord]:
    for ret in rs:
        if ret.tag in _TXN_RETS:
            txn_id = _text(ret, "TxnID")
            if txn_id is None:
                continue
            yield TxnRecord(
                txn_type=str(ret.tag)[: -len("Ret")],
                txn_id=txn_id,
                edit_sequence=_text(ret, "EditSequence"),
                ref_number=_text(ret, "RefNumber"),
                txn_line_ids=tuple(el.text for el in ret.iter("TxnLineID") if el.text),
                external_guid=_text(ret, "ExternalGUID"),
                open_amount=_amount(_text(ret, "OpenAmount")),
                is_paid=_flag(_text(ret, "IsPaid")),
            )


def _amount(value: str | None) -> Decimal | None:
    """An AMTTYPE value; None when absent or unreadable (a check that needs it then refuses to decide)."""
    if value is None:
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        return None


def _flag(value: str | None) -> bool | None:
    return None if value is None else value.strip().lower() == "true"


def _records(rs: etree._Element) -> Iterator[ListRecord]:
    for ret in rs:
        kind = _LIST_RETS.get(str(ret.tag))
        # Vendors are not hierarchical: VendorRet has Name and no FullName (qbxml130.xsd).
        full_name = (_text(ret, "FullName") or _text(ret, "Name")) if kind else None
        if kind is None or full_name is None:
            continue
        yield ListRecord(
            kind=kind,
            full_name=full_name,
            list_id=_text(ret, "ListID"),
            edit_sequence=_text(ret, "EditSequence"),
            is_active=(_text(ret, "IsActive") or "true").strip().lower() != "false",
            email=_text(ret, "Email"),
            account_type=_text(ret, "AccountType"),
        )


def _error_recovery(el: etree._Element) -> ErrorRecoveryInfo:
    return ErrorRecoveryInfo(
        list_id=_text(el, "ListID"),
        owner_id=_text(el, "OwnerID"),
        txn_id=_text(el, "TxnID"),
        txn_number=_text(el, "TxnNumber"),
        edit_sequence=_text(el, "EditSequence"),
        external_guid=_text(el, "ExternalGUID"),
    )
