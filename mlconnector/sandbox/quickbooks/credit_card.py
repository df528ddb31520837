"""CreditCardChargeAddRq and CreditCardCreditAddRq: the same reference checks as bills, on a credit card account."""

from __future__ import annotations

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    RequestFailed,
    Txn,
    add_child,
    add_ref,
    child_text,
    money_text,
    qb_time,
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
        txn = Txn(kind, self._new_id(), str(1700000000 + len(self.transactions)), next(self._txn_numbers),
                  child_text(add, "RefNumber") or "", date, lines,
                  vendor=payee.full_name if payee else None, ap_account=account.full_name,
                  memo=child_text(add, "Memo") or "", external_guid=child_text(add, "ExternalGUID"),
                  request_id=request.get("requestID"), message_set_id=message_set_id, created=self.now())
        if txn.total < 0:
            raise RequestFailed(3180, f"There was an error when saving a {label}. QuickBooks error message: "
                                       "The total cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))

    def _txn_ret(self, txn: Txn, *, include_lines: bool) -> etree._Element:
        if txn.kind not in CARD_KINDS:
            return super()._txn_ret(txn, include_lines=include_lines)
        ret = etree.Element(f"{txn.kind}Ret")
        add_child(ret, "TxnID", txn.txn_id)
        add_child(ret, "TimeCreated", qb_time(txn.created))
        add_child(ret, "TimeModified", qb_time(txn.created))
        add_child(ret, "EditSequence", txn.edit_sequence)
        add_child(ret, "TxnNumber", txn.txn_number)
        add_ref(ret, "AccountRef", self.item("account", txn.ap_account or ""), txn.ap_account)
        if txn.vendor:
            payee = self.item("vendor", txn.vendor) or self.item("customer", txn.vendor)
            add_ref(ret, "PayeeEntityRef", payee, txn.vendor)
        add_child(ret, "TxnDate", txn.txn_date)
        add_child(ret, "Amount", money_text(txn.total))
        add_child(ret, "RefNumber", txn.ref_number or None)
        add_child(ret, "Memo", txn.memo or None)
        add_child(ret, "ExternalGUID", txn.external_guid)
        if include_lines:
            for line in txn.lines:
                lr = etree.SubElement(ret, "ExpenseLineRet")
                add_child(lr, "TxnLineID", line.txn_line_id)
                add_ref(lr, "AccountRef", self.item("account", line.account), line.account)
                add_child(lr, "Amount", money_text(line.amount))
                add_child(lr, "Memo", line.memo or None)
                if line.customer:
                    add_ref(lr, "CustomerRef", self.item("customer", line.customer), line.customer)
                if line.klass:
                    add_ref(lr, "ClassRef", self.item("class", line.klass), line.klass)
                add_child(lr, "BillableStatus", line.billable_status)
        return ret
