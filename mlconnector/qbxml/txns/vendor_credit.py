"""Vendor credits (``VendorCreditAddRq``): a report whose reimbursable total is negative, owed back by the employee."""

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


def vendor_credit_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``VendorCreditAddRq``: vendor, A/P account, date, RefNumber, memo, expense lines (schema order).

    Raises:
        QbxmlError: not a vendor credit, an unsupported version, a name too long, or an invalid amount.
    """
    check_version(version)
    if posting.mode is not PostingMode.VENDOR_CREDIT:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a vendor credit")
    rq = request("VendorCreditAddRq", request_id)
    credit = sub(rq, "VendorCreditAdd")
    ref(credit, "VendorRef", posting.vendor, text.MAX_VENDOR_NAME, "vendor")
    ref(credit, "APAccountRef", posting.account, text.MAX_ACCOUNT_NAME, "A/P account")
    sub(credit, "TxnDate", posting.txn_date.isoformat())
    sub(credit, "RefNumber", ref_number(posting.ref_number, text.MAX_BILL_REF_NUMBER))
    if posting.memo:
        sub(credit, "Memo", text.memo(posting.memo))
    sub(credit, "ExternalGUID", external_guid(posting))
    purchase_lines(credit, posting.lines)
    return rq


KIND = TxnKind(PostingMode.VENDOR_CREDIT, "VendorCredit", vendor_credit_add)
