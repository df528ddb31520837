"""Company-card postings: ``CreditCardChargeAddRq`` (a purchase) and ``CreditCardCreditAddRq`` (a refund).

One expense each: the card's QuickBooks credit card account, the merchant's vendor as payee, the
expense's own date, a RefNumber of at most 11 characters and one expense line.
"""

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

MAX_CARD_REF_NUMBER = 11

_TXN_TYPES = {
    PostingMode.CREDIT_CARD_CHARGE: "CreditCardCharge",
    PostingMode.CREDIT_CARD_CREDIT: "CreditCardCredit",
}


def _card_add(mode: PostingMode, posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    check_version(version)
    if posting.mode is not mode:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a {mode}")
    for line in posting.lines:
        if line.amount < 0:
            raise QbxmlError(f"posting {posting.report_id}/{posting.part}: a card line cannot be negative")
    txn_type = _TXN_TYPES[mode]
    rq = request(f"{txn_type}AddRq", request_id)
    add = sub(rq, f"{txn_type}Add")
    ref(add, "AccountRef", posting.account, text.MAX_ACCOUNT_NAME, "credit card account")
    if posting.vendor:
        ref(add, "PayeeEntityRef", posting.vendor, text.MAX_VENDOR_NAME, "payee")
    sub(add, "TxnDate", posting.txn_date.isoformat())
    sub(add, "RefNumber", ref_number(posting.ref_number, MAX_CARD_REF_NUMBER))
    if posting.memo:
        sub(add, "Memo", text.memo(posting.memo))
    sub(add, "ExternalGUID", external_guid(posting))
    purchase_lines(add, posting.lines)
    return rq


def credit_card_charge_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``CreditCardChargeAddRq`` for one company-card purchase.

    Raises:
        QbxmlError: not a card charge, an unsupported version, a name too long, or an invalid amount.
    """
    return _card_add(PostingMode.CREDIT_CARD_CHARGE, posting, request_id, version)


def credit_card_credit_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``CreditCardCreditAddRq`` for one company-card refund (its amount positive).

    Raises:
        QbxmlError: not a card credit, an unsupported version, a name too long, or an invalid amount.
    """
    return _card_add(PostingMode.CREDIT_CARD_CREDIT, posting, request_id, version)


CHARGE_KIND = TxnKind(PostingMode.CREDIT_CARD_CHARGE, "CreditCardCharge", credit_card_charge_add)
CREDIT_KIND = TxnKind(PostingMode.CREDIT_CARD_CREDIT, "CreditCardCredit", credit_card_credit_add)
