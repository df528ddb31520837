"""CreditCardChargeAddRq and CreditCardCreditAddRq: the same reference checks as bills, on a credit card account."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    RequestFailed,
    child_text,
)

CARD_KINDS = ("CreditCardCharge", "CreditCardCredit")


class CreditCardAdds(SimulatorBase):
    """Company-card charges and credits: an active CreditCard account, an existing payee, expense lines."""

    def _card_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None, kind: str) -> None:
        label = "Credit Card Charge" if kind == "CreditCardCharge" else "Credit Card Credit"
        add = request.find(f"{kind}Add")
        if add is None:
            raise RequestFailed(3150, f'There is a missing element: "{kind}Add".')
        account = self._resolve(add.find("AccountRef"), ["account"], "Account", label, required=True)
        assert account is not None
        if account.account_type != "CreditCard":
            raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{account.full_name}" '
                                      f"in the {label}. QuickBooks error message: "
                                      "the account must be a credit card account.")
        payee = self._resolve(add.find("PayeeEntityRef"), ["vendor", "customer"], "Entity", label)
        lines = self._expense_lines(add, label)
        date = child_text(add, "TxnDate") or self.now().date().isoformat()
        txn = self._new_txn(kind, add, request, message_set_id, lines, txn_date=date,
                            vendor=payee.full_name if payee else None, ap_account=account.full_name)
        if txn.total < 0:
            raise RequestFailed(3180, f"There was an error when saving a {label}. QuickBooks error message: "
                                       "The total cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
