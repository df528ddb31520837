"""Build qbXML requests with lxml, in the element order Intuit's schemas enforce.

Order matters: QuickBooks answers an out-of-order element with a parse error (0x80040400), so
each builder appends children in the sequence of the XSD (QBXML.md §5-§7). Nothing here is
specific to one version except where noted; elements that exist only in 16.0 (a bill's header
ClassRef, an expense line's VendorRef) are never sent, so every request is valid in 13.0 and 16.0.

Each transaction kind is one module in ``qbxml/txns/`` (its add request); this module holds what is
shared: list and transaction queries, the message envelope. Typical use by the Web Connector server::

    rq = bill_add(posting, request_id="17", version="13.0")
    xml = build_message([rq], version="13.0", new_message_set_id="mlc-20260324T101500")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import ListKind, PlannedPosting, PostingMode
from mlconnector.qbxml import text
from mlconnector.qbxml.elements import external_guid, external_guid_for, request, sub
from mlconnector.qbxml.txns import txn_kind
from mlconnector.qbxml.txns.bill import bill_add
from mlconnector.qbxml.txns.journal import journal_entry_add
from mlconnector.qbxml.xml import check_version, to_bytes

# One request element, as the builders here return it (for callers that must not import lxml).
Request = etree._Element

ON_ERROR = ("stopOnError", "continueOnError")

_QUERY_RQ = {
    ListKind.ACCOUNT: "AccountQueryRq",
    ListKind.VENDOR: "VendorQueryRq",
    ListKind.CLASS: "ClassQueryRq",
    ListKind.CUSTOMER: "CustomerQueryRq",
    ListKind.ITEM: "ItemQueryRq",
}
_RET_ELEMENTS = {
    ListKind.ACCOUNT: ("ListID", "FullName", "EditSequence", "IsActive", "AccountType"),
    ListKind.VENDOR: ("ListID", "FullName", "Name", "EditSequence", "IsActive", "Email"),
    ListKind.CLASS: ("ListID", "FullName", "EditSequence", "IsActive"),
    ListKind.CUSTOMER: ("ListID", "FullName", "EditSequence", "IsActive", "Email"),
    ListKind.ITEM: ("ListID", "FullName", "EditSequence", "IsActive"),
}
_NAME_LIMITS = {
    ListKind.ACCOUNT: text.MAX_ACCOUNT_NAME,
    ListKind.VENDOR: text.MAX_VENDOR_NAME,
    ListKind.CLASS: text.MAX_CLASS_NAME,
    ListKind.CUSTOMER: text.MAX_CUSTOMER_NAME,
    ListKind.ITEM: text.MAX_ITEM_NAME,
}
# Only vendors and customers support iterators (QBXML.md §3).
_ITERABLE = frozenset({ListKind.VENDOR, ListKind.CUSTOMER})


def write_request(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """The add request for a posting, by the transaction kind its mode is written as (``qbxml.txns``).

    Raises:
        QbxmlError: the posting cannot be written as that kind (see the kind's module).
    """
    return txn_kind(posting.mode).add(posting, request_id, version)


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
    rq = request(_QUERY_RQ[kind], request_id)
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
            sub(rq, "FullName", text.check_name(name, _NAME_LIMITS[kind], str(kind)))
    else:
        if max_returned is not None:
            sub(rq, "MaxReturned", str(max_returned))
        sub(rq, "ActiveStatus", "All")
    for element in _RET_ELEMENTS[kind]:
        sub(rq, "IncludeRetElement", element)
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
    rq = request(txn_kind(mode).query_tag, request_id)
    for value in dict.fromkeys(values):
        sub(rq, element, value)
    sub(rq, "IncludeLineItems", "true" if include_line_items else "false")
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
    msgs = sub(root, "QBXMLMsgsRq")
    msgs.set("onError", on_error)
    for name, value in (("newMessageSetID", new_message_set_id), ("oldMessageSetID", old_message_set_id)):
        if value is not None:
            if not value or len(value) > text.MAX_MESSAGE_SET_ID or text.clean_text(value) != value:
                raise QbxmlError(f"{name} {value!r} must be 1 to {text.MAX_MESSAGE_SET_ID} plain characters")
            msgs.set(name, value)
    for rq in requests:
        msgs.append(rq)
    return to_bytes(root, version)


__all__ = [
    "ON_ERROR", "bill_add", "build_message", "external_guid", "external_guid_for", "journal_entry_add",
    "list_query", "reference_queries", "txn_query_by_id", "txn_query_by_ref", "write_request",
]
