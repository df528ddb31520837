"""BillAddRq: reference checks, billable lines, the new bill's TxnID and TxnLineIDs."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    RequestFailed,
    Txn,
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
        txn = Txn("Bill", self._new_id(), str(1700000000 + len(self.transactions)), next(self._txn_numbers),
                  child_text(add, "RefNumber") or "", child_text(add, "TxnDate") or self.now().date().isoformat(), lines,
                  vendor=vendor.full_name, ap_account=ap.full_name, due_date=child_text(add, "DueDate"),
                  memo=child_text(add, "Memo") or "", external_guid=child_text(add, "ExternalGUID"),
                  request_id=request.get("requestID"), message_set_id=message_set_id, created=self.now())
        if txn.total < 0:
            raise RequestFailed(3180, "There was an error when saving a Bill. QuickBooks error message: "
                                       "The total of a bill cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
