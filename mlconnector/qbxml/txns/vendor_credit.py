"""Vendor credits (``VendorCreditAddRq``): a report whose reimbursable total is negative, owed back by the employee."""

from __future__ import annotations

from lxml import etree

from mlconnector.models import PlannedPosting, PostingMode
from mlconnector.qbxml.txns.bill import vendor_transaction_add
from mlconnector.qbxml.txns.kind import TxnKind


def vendor_credit_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``VendorCreditAddRq``: the same elements as a bill (vendor, A/P account, lines with the signs flipped).

    Raises:
        QbxmlError: not a vendor credit, an unsupported version, a name too long, or an invalid amount.
    """
    return vendor_transaction_add(posting, request_id, version, mode=PostingMode.VENDOR_CREDIT,
                                  txn_type="VendorCredit", what="a vendor credit")


KIND = TxnKind(PostingMode.VENDOR_CREDIT, "VendorCredit", vendor_credit_add)
