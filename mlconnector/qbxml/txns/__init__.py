"""One module per QuickBooks transaction kind, registered here by the posting mode that writes it."""

from __future__ import annotations

from mlconnector.models import PostingMode
from mlconnector.qbxml.txns import bill, bill_payment, check, credit_card, journal, vendor_credit
from mlconnector.qbxml.txns.kind import TxnKind

TXN_KINDS: dict[PostingMode, TxnKind] = {
    kind.mode: kind
    for kind in (bill.KIND, journal.KIND, vendor_credit.KIND, check.KIND, credit_card.CHARGE_KIND,
                 credit_card.CREDIT_KIND, bill_payment.KIND)
}


def txn_kind(mode: PostingMode) -> TxnKind:
    """The transaction kind a posting of ``mode`` is written as."""
    return TXN_KINDS[mode]


__all__ = ["TXN_KINDS", "TxnKind", "txn_kind"]
