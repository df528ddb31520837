"""Bill payments (``BillPaymentCheckAddRq``): a reimbursed report's bills paid from ``bill_payment_account``.

Never to be printed: the RefNumber (of the choice IsToBePrinted / RefNumber) is sent, so recovery finds
the payment by RefNumber like any other posting. One ``AppliedToTxnAdd`` per bill part: its TxnID and
that part's total.
"""

from __future__ import annotations

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import PlannedPosting, PostingMode
from mlconnector.qbxml import text
from mlconnector.qbxml.elements import external_guid, ref, ref_number, request, sub
from mlconnector.qbxml.txns.kind import TxnKind
from mlconnector.qbxml.xml import check_version

MAX_TXN_ID = 36  # IDTYPE


def bill_payment_check_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``BillPaymentCheckAddRq``: payee, A/P account, date, bank account, RefNumber, memo, applied bills.

    Raises:
        QbxmlError: not a bill payment, no bill to apply it to, a bill without a TxnID, a payment of
            zero or less, bills on several A/P accounts, a name too long, or an unsupported version.
    """
    check_version(version)
    if posting.mode is not PostingMode.BILL_PAYMENT:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a bill payment")
    if not posting.lines:
        raise QbxmlError(f"bill payment {posting.ref_number} applies to no bill")
    ap_accounts = {ln.account for ln in posting.lines}
    if len(ap_accounts) != 1:
        raise QbxmlError(f"bill payment {posting.ref_number} pays bills on several A/P accounts: {sorted(ap_accounts)}")
    rq = request("BillPaymentCheckAddRq", request_id)
    add = sub(rq, "BillPaymentCheckAdd")
    ref(add, "PayeeEntityRef", posting.vendor, text.MAX_VENDOR_NAME, "payee")
    ref(add, "APAccountRef", posting.lines[0].account, text.MAX_ACCOUNT_NAME, "A/P account")
    sub(add, "TxnDate", posting.txn_date.isoformat())
    ref(add, "BankAccountRef", posting.account, text.MAX_ACCOUNT_NAME, "bank account")
    sub(add, "RefNumber", ref_number(posting.ref_number, text.MAX_CHECK_REF_NUMBER))
    if posting.memo:
        sub(add, "Memo", text.memo(posting.memo))
    sub(add, "ExternalGUID", external_guid(posting))
    for line in posting.lines:
        if not line.txn_id or len(line.txn_id) > MAX_TXN_ID or text.clean_text(line.txn_id) != line.txn_id:
            raise QbxmlError(f"bill payment {posting.ref_number}: {line.memo or 'a bill'} has no valid TxnID")
        if line.amount <= 0:
            raise QbxmlError(f"bill payment {posting.ref_number}: the payment of {line.txn_id} must be above zero")
        applied = sub(add, "AppliedToTxnAdd")
        sub(applied, "TxnID", line.txn_id)
        sub(applied, "PaymentAmount", text.format_amount(line.amount))
    return rq


def bills_query(txn_ids: list[str], request_id: str, version: str) -> etree._Element:
    """A ``BillQueryRq`` for bills by TxnID, kept small: what a payment needs (open amount, paid, vendor)."""
    check_version(version)
    rq = request("BillQueryRq", request_id)
    for txn_id in txn_ids:
        sub(rq, "TxnID", txn_id)
    for element in ("TxnID", "VendorRef", "APAccountRef", "RefNumber", "AmountDue", "IsPaid", "OpenAmount"):
        sub(rq, "IncludeRetElement", element)
    return rq


KIND = TxnKind(PostingMode.BILL_PAYMENT, "BillPaymentCheck", bill_payment_check_add)
