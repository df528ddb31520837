"""VendorCreditAddRq: the vendor, the A/P account, expense lines; a credit's total cannot be negative."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import RequestFailed


class VendorCreditAdds(SimulatorBase):
    """VendorCreditAddRq: reference checks, the new credit's TxnID and TxnLineIDs."""

    def _vendor_credit_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("VendorCreditAdd")
        if add is None:
            raise RequestFailed(3150, 'There is a missing element: "VendorCreditAdd".')
        vendor = self._resolve(add.find("VendorRef"), ["vendor"], "Vendor", "VendorCredit", required=True)
        ap = self._resolve(add.find("APAccountRef"), ["account"], "Account", "VendorCredit")
        if ap is not None and ap.account_type != "AccountsPayable":
            raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{ap.full_name}" in the '
                                      "VendorCredit.")
        lines = self._expense_lines(add, "VendorCredit")
        assert vendor is not None
        txn = self._new_txn("VendorCredit", add, request, message_set_id, lines, vendor=vendor.full_name,
                            ap_account=ap.full_name if ap else "Accounts Payable")
        if txn.total < 0:
            raise RequestFailed(3180, "There was an error when saving a VendorCredit. QuickBooks error message: "
                                      "The total of a credit cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))
