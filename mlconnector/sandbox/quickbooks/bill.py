"""BillAddRq: reference checks, billable lines, the new bill's TxnID and TxnLineIDs."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    RequestFailed,
    child_text,
)


class BillAdds(SimulatorBase):
    """BillAddRq: reference checks, billable lines, the new bill's TxnID and TxnLineIDs."""

    def _bill_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("BillAdd")
        if add is None:
            raise RequestFailed(3150, 'There is a missing element: "BillAdd".')
        vendor = self._resolve(add.find("VendorRef"), ["vendor"], "Vendor", "Bill", required=True)
        ap_ref = add.find("APAccountRef")
        if ap_ref is not None:
            ap = self._resolve(ap_ref, ["account"], "Account", "Bill")
            if ap is not None and ap.account_type != "AccountsPayable":
                raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{ap.full_name}" in the Bill.')
        else:
            ap = next((a for a in self.lists["account"].values()
                       if a.account_type == "AccountsPayable" and a.is_active), None)
            if ap is None:
                raise RequestFailed(3270, "There is no accounts payable account to post the bill to.")
        lines = self._expense_lines(add, "Bill")
        assert vendor is not None and ap is not None
        txn = self._new_txn("Bill", add, request, message_set_id, lines, vendor=vendor.full_name,
                            ap_account=ap.full_name, due_date=child_text(add, "DueDate"))
        if txn.total < 0:
            raise RequestFailed(3180, "There was an error when saving a Bill. QuickBooks error message: "
                                       "The total of a bill cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
