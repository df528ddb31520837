"""CheckAddRq: a bank account, a payee, expense lines; numbered, or to be printed with no number."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import RequestFailed, child_text


class CheckAdds(SimulatorBase):
    """CheckAddRq: reference checks, the new check's TxnID and TxnLineIDs."""

    def _check_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("CheckAdd")
        if add is None:
            raise RequestFailed(3150, 'There is a missing element: "CheckAdd".')
        bank = self._resolve(add.find("AccountRef"), ["account"], "Account", "Check", required=True)
        assert bank is not None
        if bank.account_type not in ("Bank", "CreditCard"):
            raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{bank.full_name}" in '
                                      "the Check.")
        payee = self._resolve(add.find("PayeeEntityRef"), ["vendor", "customer"], "Entity", "Check", required=True)
        assert payee is not None
        to_print = child_text(add, "IsToBePrinted") == "true"
        if to_print and child_text(add, "RefNumber"):
            raise RequestFailed(3020, "A check to be printed cannot have a check number.")
        lines = self._expense_lines(add, "Check")
        txn = self._new_txn("Check", add, request, message_set_id, lines, vendor=payee.full_name,
                            ap_account=bank.full_name, to_be_printed=to_print)
        if txn.total < 0:
            raise RequestFailed(3180, "There was an error when saving a Check. QuickBooks error message: "
                                      "The amount of a check cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
