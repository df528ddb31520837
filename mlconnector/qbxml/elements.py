"""The pieces every qbXML request is built from: elements, name references, requestIDs, RefNumbers,
and the ExternalGUID that marks a transaction as ml-connector's own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import Line, PlannedPosting
from mlconnector.qbxml import text

_GUID_NAMESPACE = uuid.UUID("6f1d0c3e-2f6b-4c41-9d7a-1b4d8e5f0a21")


def sub(parent: etree._Element, tag: str, value: str | None = None) -> etree._Element:
    """Append ``<tag>value</tag>`` to ``parent``."""
    child = etree.SubElement(parent, tag)
    if value is not None:
        child.text = value
    return child


def ref(parent: etree._Element, tag: str, full_name: str, limit: int, what: str) -> None:
    """Append ``<tag><FullName>…</FullName></tag>``, refusing a name QuickBooks would not take."""
    sub(sub(parent, tag), "FullName", text.check_name(full_name, limit, what))


def request(tag: str, request_id: str) -> etree._Element:
    """A request element with its requestID (which the answer repeats)."""
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


def ref_number(value: str, limit: int) -> str:
    """The RefNumber, refused when empty, too long or not plain text."""
    if not value or len(value) > limit or text.clean_text(value) != value:
        raise QbxmlError(f"RefNumber {value!r} must be 1 to {limit} plain characters")
    return value


def expense_line(parent: etree._Element, line: Line) -> None:
    """An ``ExpenseLineAdd`` (bills, checks, vendor credits, card charges and credits share its shape)."""
    el = sub(parent, "ExpenseLineAdd")
    ref(el, "AccountRef", line.account, text.MAX_ACCOUNT_NAME, "account")
    sub(el, "Amount", text.format_amount(line.amount))
    if line.memo:
        sub(el, "Memo", text.memo(line.memo))
    _job_and_class(el, line)


def item_line(parent: etree._Element, line: Line) -> None:
    """An ``ItemLineAdd``: the item (which carries its own account), the memo as its description, the amount."""
    el = sub(parent, "ItemLineAdd")
    ref(el, "ItemRef", line.item or "", text.MAX_ITEM_NAME, "item")
    if line.memo:
        sub(el, "Desc", text.memo(line.memo))
    sub(el, "Amount", text.format_amount(line.amount))
    _job_and_class(el, line)


def _job_and_class(el: etree._Element, line: Line) -> None:
    """The customer:job, class and billable status every purchase line ends with (in schema order)."""
    if line.customer:
        ref(el, "CustomerRef", line.customer, text.MAX_CUSTOMER_NAME, "customer")
    if line.klass:
        ref(el, "ClassRef", line.klass, text.MAX_CLASS_NAME, "class")
    if line.customer:
        sub(el, "BillableStatus", "Billable" if line.billable else "NotBillable")


def purchase_lines(parent: etree._Element, lines: Sequence[Line]) -> None:
    """A purchase's lines in schema order: every expense line, then every item line."""
    for line in lines:
        if not line.item:
            expense_line(parent, line)
    for line in lines:
        if line.item:
            item_line(parent, line)
