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
    check_version(version)
    if posting.mode is not PostingMode.BILL:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a bill")
    rq = request("BillAddRq", request_id)
    bill = sub(rq, "BillAdd")
    ref(bill, "VendorRef", posting.vendor, text.MAX_VENDOR_NAME, "vendor")
    ref(bill, "APAccountRef", posting.account, text.MAX_ACCOUNT_NAME, "A/P account")
    sub(bill, "TxnDate", posting.txn_date.isoformat())
    sub(bill, "RefNumber", ref_number(posting.ref_number, text.MAX_BILL_REF_NUMBER))
    if posting.memo:
        sub(bill, "Memo", text.memo(posting.memo))
    sub(bill, "ExternalGUID", external_guid(posting))
    purchase_lines(bill, posting.lines)
    return rq


KIND = TxnKind(PostingMode.BILL, "Bill", bill_add)
