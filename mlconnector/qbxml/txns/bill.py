"""Bills (``BillAddRq``): reimbursable expenses owed to the employee's vendor, one expense line each."""

from __future__ import annotations

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import PlannedPosting, PostingMode
from mlconnector.qbxml import text
from mlconnector.qbxml.elements import (
    external_guid,
    purchase_lines,
    ref,
    ref_number,
    request,
    sub,
)
from mlconnector.qbxml.txns.kind import TxnKind
from mlconnector.qbxml.xml import check_version


def bill_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``BillAddRq`` for a bill posting: vendor, A/P account, date, RefNumber, memo, expense lines.

    Raises:
        QbxmlError: not a bill, an unsupported version, a name too long, or an invalid amount.
    """
    return vendor_transaction_add(posting, request_id, version, mode=PostingMode.BILL, txn_type="Bill", what="a bill")


def vendor_transaction_add(posting: PlannedPosting, request_id: str, version: str, *, mode: PostingMode,
                           txn_type: str, what: str) -> etree._Element:
    """``{txn_type}AddRq`` for what a vendor is owed or owes: a bill or a vendor credit (the same elements, in
    schema order: VendorRef, APAccountRef, TxnDate, RefNumber, Memo, ExternalGUID, lines).

    Raises:
        QbxmlError: not a posting of ``mode``, an unsupported version, a name too long, or an invalid amount.
    """
    check_version(version)
    if posting.mode is not mode:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not {what}")
    rq = request(f"{txn_type}AddRq", request_id)
    add = sub(rq, f"{txn_type}Add")
    ref(add, "VendorRef", posting.vendor, text.MAX_VENDOR_NAME, "vendor")
    ref(add, "APAccountRef", posting.account, text.MAX_ACCOUNT_NAME, "A/P account")
    sub(add, "TxnDate", posting.txn_date.isoformat())
    sub(add, "RefNumber", ref_number(posting.ref_number, text.MAX_BILL_REF_NUMBER))
    if posting.memo:
        sub(add, "Memo", text.memo(posting.memo))
    sub(add, "ExternalGUID", external_guid(posting))
    purchase_lines(add, posting.lines)
    return rq


KIND = TxnKind(PostingMode.BILL, "Bill", bill_add)
