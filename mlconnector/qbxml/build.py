"""Build qbXML requests with lxml, in the element order Intuit's schemas enforce.

Order matters: QuickBooks answers an out-of-order element with a parse error (0x80040400), so
each builder appends children in the sequence of the XSD (QBXML.md §5-§7). Nothing here is
specific to one version except where noted; elements that exist only in 16.0 (a bill's header
ClassRef, an expense line's VendorRef) are never sent, so every request is valid in 13.0 and 16.0.

Typical use by the Web Connector server::

    rq = bill_add(posting, request_id="17", version="13.0")
    xml = build_message([rq], version="13.0", new_message_set_id="mlc-20260324T101500")
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from collections.abc import Iterable, Sequence

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import Line, ListKind, PlannedPosting, PostingMode, Side
from mlconnector.qbxml import text
from mlconnector.qbxml.xml import check_version, to_bytes

ON_ERROR = ("stopOnError", "continueOnError")
_GUID_NAMESPACE = uuid.UUID("6f1d0c3e-2f6b-4c41-9d7a-1b4d8e5f0a21")

_QUERY_RQ = {
    ListKind.ACCOUNT: "AccountQueryRq",
    ListKind.VENDOR: "VendorQueryRq",
    ListKind.CLASS: "ClassQueryRq",
    ListKind.CUSTOMER: "CustomerQueryRq",
}
_RET_ELEMENTS = {
    ListKind.ACCOUNT: ("ListID", "FullName", "EditSequence", "IsActive", "AccountType"),
    ListKind.VENDOR: ("ListID", "FullName", "Name", "EditSequence", "IsActive", "Email"),
    ListKind.CLASS: ("ListID", "FullName", "EditSequence", "IsActive"),
    ListKind.CUSTOMER: ("ListID", "FullName", "EditSequence", "IsActive", "Email"),
}
_NAME_LIMITS = {
    ListKind.ACCOUNT: text.MAX_ACCOUNT_NAME,
    ListKind.VENDOR: text.MAX_VENDOR_NAME,
    ListKind.CLASS: text.MAX_CLASS_NAME,
    ListKind.CUSTOMER: text.MAX_CUSTOMER_NAME,
}
# Only vendors and customers support iterators (QBXML.md §3).
_ITERABLE = frozenset({ListKind.VENDOR, ListKind.CUSTOMER})


def _sub(parent: etree._Element, tag: str, value: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, tag)
    if value is not None:
        child.text = value
    return child


def _ref(parent: etree._Element, tag: str, full_name: str, limit: int, what: str) -> None:
    _sub(_sub(parent, tag), "FullName", text.check_name(full_name, limit, what))


def _request(tag: str, request_id: str) -> etree._Element:
    if not request_id or len(request_id) > text.MAX_REQUEST_ID or text.clean_text(request_id) != request_id:
        raise QbxmlError(f"requestID {request_id!r} must be 1 to {text.MAX_REQUEST_ID} plain characters")
    return etree.Element(tag, requestID=request_id)


def external_guid(posting: PlannedPosting) -> str:
    """A GUID derived from the posting's idempotency key (report ID, part), in qbXML's GUIDTYPE form.

    QuickBooks returns it on the transaction, so a recovery query can recognise our own posting.
    """
    return external_guid_for(posting.report_id, posting.part)


def external_guid_for(report_id: str, part: int) -> str:
    """:func:`external_guid` from the idempotency key alone (an answer is checked without the posting's body)."""
    value = uuid.uuid5(_GUID_NAMESPACE, f"{report_id}\x1f{part}")
    return "{" + str(value).upper() + "}"


def bill_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``BillAddRq`` for a bill posting: vendor, A/P account, date, RefNumber, memo, expense lines.

    Raises:
        QbxmlError: not a bill, an unsupported version, a name too long, or an invalid amount.
    """
    check_version(version)
    if posting.mode is not PostingMode.BILL:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a bill")
    rq = _request("BillAddRq", request_id)
    bill = _sub(rq, "BillAdd")
    _ref(bill, "VendorRef", posting.vendor, text.MAX_VENDOR_NAME, "vendor")
    _ref(bill, "APAccountRef", posting.account, text.MAX_ACCOUNT_NAME, "A/P account")
    _sub(bill, "TxnDate", posting.txn_date.isoformat())
    _sub(bill, "RefNumber", _ref_number(posting.ref_number, text.MAX_BILL_REF_NUMBER))
    if posting.memo:
        _sub(bill, "Memo", text.memo(posting.memo))
    _sub(bill, "ExternalGUID", external_guid(posting))
    for line in posting.lines:
        _expense_line(bill, line)
    return rq


def _expense_line(bill: etree._Element, line: Line) -> None:
    el = _sub(bill, "ExpenseLineAdd")
    _ref(el, "AccountRef", line.account, text.MAX_ACCOUNT_NAME, "account")
    _sub(el, "Amount", text.format_amount(line.amount))
    if line.memo:
        _sub(el, "Memo", text.memo(line.memo))
    if line.customer:
        _ref(el, "CustomerRef", line.customer, text.MAX_CUSTOMER_NAME, "customer")
    if line.klass:
        _ref(el, "ClassRef", line.klass, text.MAX_CLASS_NAME, "class")
    if line.customer:
        _sub(el, "BillableStatus", "Billable" if line.billable else "NotBillable")


def journal_entry_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``JournalEntryAddRq`` for a journal posting; refuses one that does not balance.

    No header Memo: QuickBooks Desktop ignores it (QBXML.md §6), so memos go on the lines.

    Raises:
        QbxmlError: not a journal entry, unbalanced, a negative amount, a name too long, or an
            unsupported version.
    """
    check_version(version)
    if posting.mode is not PostingMode.JOURNAL:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a journal entry")
    debits = sum((ln.amount for ln in posting.lines if ln.side is Side.DEBIT), start=Decimal(0))
    credits = sum((ln.amount for ln in posting.lines if ln.side is Side.CREDIT), start=Decimal(0))
    if debits != credits:
        raise QbxmlError(f"journal entry {posting.ref_number} does not balance: debits {debits}, credits {credits}")
    rq = _request("JournalEntryAddRq", request_id)
    je = _sub(rq, "JournalEntryAdd")
    _sub(je, "TxnDate", posting.txn_date.isoformat())
    _sub(je, "RefNumber", _ref_number(posting.ref_number, text.MAX_JOURNAL_REF_NUMBER))
    _sub(je, "ExternalGUID", external_guid(posting))
    for line in posting.lines:
        _journal_line(je, line)
    return rq


def _journal_line(je: etree._Element, line: Line) -> None:
    if line.amount < 0:
        raise QbxmlError(f"journal line {line.account!r} has a negative amount {line.amount}")
    el = _sub(je, "JournalDebitLine" if line.side is Side.DEBIT else "JournalCreditLine")
    _ref(el, "AccountRef", line.account, text.MAX_ACCOUNT_NAME, "account")
    _sub(el, "Amount", text.format_amount(line.amount))
    if line.memo:
        _sub(el, "Memo", text.memo(line.memo))
    entity = line.entity or line.customer
    if entity:
        _ref(el, "EntityRef", entity, text.MAX_CUSTOMER_NAME, "name")
    if line.klass:
        _ref(el, "ClassRef", line.klass, text.MAX_CLASS_NAME, "class")
    if line.customer:
        _sub(el, "BillableStatus", "Billable" if line.billable else "NotBillable")


def _ref_number(value: str, limit: int) -> str:
    if not value or len(value) > limit or text.clean_text(value) != value:
        raise QbxmlError(f"RefNumber {value!r} must be 1 to {limit} plain characters")
    return value


def write_request(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """The add request for a posting: ``BillAddRq`` or ``JournalEntryAddRq`` by its mode.

    Raises:
        QbxmlError: as :func:`bill_add` / :func:`journal_entry_add`.
    """
    if posting.mode is PostingMode.BILL:
        return bill_add(posting, request_id, version)
    return journal_entry_add(posting, request_id, version)


def list_query(
    kind: ListKind,
    names: Iterable[str] | None,
    request_id: str,
    version: str,
    *,
    iterator: str | None = None,
    iterator_id: str | None = None,
    max_returned: int | None = None,
) -> etree._Element:
    """An ``Account/Vendor/Class/CustomerQueryRq`` for the given full names, or for the whole list.

    ``names=None`` asks for every record, active or not. Vendors and customers can be paged with
    ``iterator="Start"`` (then ``"Continue"`` with ``iterator_id``) and ``max_returned``.

    Raises:
        QbxmlError: an unsupported version, an empty name list, a name too long, or an iterator
            for a list that has none.
    """
    check_version(version)
    rq = _request(_QUERY_RQ[kind], request_id)
    if iterator is not None:
        if kind not in _ITERABLE:
            raise QbxmlError(f"QuickBooks has no iterator for {kind} queries")
        rq.set("iterator", iterator)
        if iterator_id:
            rq.set("iteratorID", iterator_id)
    if names is not None:
        wanted = sorted(set(names), key=str.casefold)
        if not wanted:
            raise QbxmlError(f"a {kind} query needs at least one name")
        for name in wanted:
            _sub(rq, "FullName", text.check_name(name, _NAME_LIMITS[kind], str(kind)))
    else:
        if max_returned is not None:
            _sub(rq, "MaxReturned", str(max_returned))
        _sub(rq, "ActiveStatus", "All")
    for element in _RET_ELEMENTS[kind]:
        _sub(rq, "IncludeRetElement", element)
    return rq


def reference_queries(
    postings: Iterable[PlannedPosting], version: str, *, request_id_prefix: str = "ref"
) -> list[etree._Element]:
    """One list query per list kind for every name the postings reference (the pre-send re-query).

    RequestIDs are ``{prefix}-account``, ``{prefix}-vendor``, ``{prefix}-class``, ``{prefix}-customer``;
    kinds with no name are left out.

    Raises:
        QbxmlError: an unsupported version or a name QuickBooks cannot hold.
    """
    wanted: dict[ListKind, set[str]] = {kind: set() for kind in _QUERY_RQ}
    for posting in postings:
        for kind, names in posting.references().items():
            wanted[kind] |= names
    return [
        list_query(kind, names, f"{request_id_prefix}-{kind.value}", version)
        for kind, names in wanted.items()
        if names
    ]


def txn_query_by_ref(
    mode: PostingMode, ref_numbers: Sequence[str], request_id: str, version: str, *, include_line_items: bool = False
) -> etree._Element:
    """A ``BillQueryRq`` or ``JournalEntryQueryRq`` by RefNumber (to check before re-adding).

    Status 1 in the answer means no such transaction exists.

    Raises:
        QbxmlError: an unsupported version or no RefNumber.
    """
    return _txn_query(mode, "RefNumber", ref_numbers, request_id, version, include_line_items)


def txn_query_by_id(mode: PostingMode, txn_ids: Sequence[str], request_id: str, version: str) -> etree._Element:
    """A ``BillQueryRq`` or ``JournalEntryQueryRq`` by TxnID (a transaction we recorded may have been edited).

    Raises:
        QbxmlError: an unsupported version or no TxnID.
    """
    return _txn_query(mode, "TxnID", txn_ids, request_id, version, False)


def _txn_query(
    mode: PostingMode, element: str, values: Sequence[str], request_id: str, version: str, include_line_items: bool
) -> etree._Element:
    check_version(version)
    if not values:
        raise QbxmlError(f"a transaction query needs at least one {element}")
    rq = _request("BillQueryRq" if mode is PostingMode.BILL else "JournalEntryQueryRq", request_id)
    for value in dict.fromkeys(values):
        _sub(rq, element, value)
    _sub(rq, "IncludeLineItems", "true" if include_line_items else "false")
    return rq


def build_message(
    requests: Sequence[etree._Element],
    *,
    version: str,
    on_error: str = "stopOnError",
    new_message_set_id: str | None = None,
    old_message_set_id: str | None = None,
) -> bytes:
    """A whole qbXML request document: headers, ``<QBXML><QBXMLMsgsRq …>`` and the requests in order.

    With no requests and both message-set IDs equal, it is an error-recovery status check.

    Raises:
        QbxmlError: an unsupported version or ``on_error``, or a message-set ID over 23 characters.
    """
    check_version(version)
    if on_error not in ON_ERROR:
        raise QbxmlError(f"onError {on_error!r} is not one of {', '.join(ON_ERROR)}")
    root = etree.Element("QBXML")
    msgs = _sub(root, "QBXMLMsgsRq")
    msgs.set("onError", on_error)
    for name, value in (("newMessageSetID", new_message_set_id), ("oldMessageSetID", old_message_set_id)):
        if value is not None:
            if not value or len(value) > text.MAX_MESSAGE_SET_ID or text.clean_text(value) != value:
                raise QbxmlError(f"{name} {value!r} must be 1 to {text.MAX_MESSAGE_SET_ID} plain characters")
            msgs.set(name, value)
    for rq in requests:
        msgs.append(rq)
    return to_bytes(root, version)
