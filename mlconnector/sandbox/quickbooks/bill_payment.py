"""BillPaymentCheckAddRq: a check from a bank account paying one or more of a vendor's open bills.

What the simulator checks, before it saves anything (any failure saves nothing):

- PayeeEntityRef: an active vendor (or customer) - 3140 otherwise, as for every reference;
- APAccountRef: an active AccountsPayable account (3140); when absent, the first active one (3270 if none);
- BankAccountRef: an active account of type Bank (3140 otherwise);
- each AppliedToTxnAdd: its TxnID an existing bill (3120 "Object ... cannot be found"), from the payee (3140)
  and on the payment's A/P account (3140); a PaymentAmount (3150 when missing) greater than zero and at most
  the bill's open amount (3210); no bill twice in one payment (3180). Credits (SetCredit) and discounts are
  not modelled (1030).

A saved payment is a :class:`~mlconnector.sandbox.quickbooks.records.Txn` of kind "BillPaymentCheck" whose
``applied`` lists (bill TxnID, PaymentAmount); a bill's open amount is its total less every payment applied
to it (:meth:`SimulatorBase.open_amount`). ``AppliedToTxnRet/Amount`` carries the payment as a positive
amount: Intuit's reference does not say its sign, and a positive amount is what a reader of the answer expects.
"""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.records import (
    ListItem,
    RequestFailed,
    Txn,
    add_child,
    child_text,
    money_text,
)

LABEL = "BillPaymentCheck"
_UNMODELLED = ("TxnLineDetail", "SetCredit", "DiscountAmount", "DiscountAccountRef", "DiscountClassRef")


class BillPayments(SimulatorBase):
    """BillPaymentCheckAddRq, and the bookkeeper paying a bill by hand in the Pay Bills window."""

    def _bill_payment_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("BillPaymentCheckAdd")
        if add is None:
            raise RequestFailed(3150, 'There is a missing element: "BillPaymentCheckAdd".')
        txn = self._save_bill_payment(add, request, message_set_id)
        rs.append(self._txn_ret(txn, include_lines=True))

    def _save_bill_payment(self, add: etree._Element, request: etree._Element, message_set_id: str | None) -> Txn:
        """Check every rule, then save the payment (which lowers each bill's open amount)."""
        payee = self._resolve(add.find("PayeeEntityRef"), ["vendor", "customer"], "Entity", LABEL, required=True)
        assert payee is not None
        ap = self._payables_account(add.find("APAccountRef"))
        bank = self._resolve(add.find("BankAccountRef"), ["account"], "Account", LABEL, required=True)
        assert bank is not None
        if bank.account_type != "Bank":
            raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{bank.full_name}" in the '
                                      f"{LABEL}. QuickBooks error message: The account must be a bank account.")
        applied: list[tuple[str, Decimal]] = []
        for node in add.findall("AppliedToTxnAdd"):
            txn_id = child_text(node, "TxnID") or ""
            unmodelled = next((tag for tag in _UNMODELLED if node.find(tag) is not None), None)
            if unmodelled is not None:
                raise RequestFailed(1030, f"The simulator does not support {unmodelled} in a bill payment.")
            bill = next((t for t in self.transactions if t.kind == "Bill" and t.txn_id == txn_id), None)
            if bill is None:
                raise RequestFailed(3120, f'Object "{txn_id}" specified in the request cannot be found.')
            if any(seen == txn_id for seen, _ in applied):
                raise RequestFailed(3180, f"There was an error when saving a {LABEL}. QuickBooks error message: "
                                          f'The bill "{txn_id}" is applied to more than once in this payment.')
            if (bill.vendor or "").casefold() != payee.full_name.casefold():
                raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Entity "{payee.full_name}" '
                                          f"in the {LABEL}. QuickBooks error message: The bill \"{txn_id}\" is "
                                          f'from "{bill.vendor}", not from the payee.')
            if (bill.ap_account or "").casefold() != ap.full_name.casefold():
                raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{ap.full_name}" in '
                                          f"the {LABEL}. QuickBooks error message: The bill \"{txn_id}\" is in the "
                                          f'A/P account "{bill.ap_account}".')
            if node.find("PaymentAmount") is None:
                raise RequestFailed(3150, 'There is a missing element: "PaymentAmount".')
            amount = self._amount(node, "PaymentAmount")
            if amount <= 0:
                raise RequestFailed(3210, f'The "PaymentAmount" field has an invalid value "{money_text(amount)}". '
                                          "QuickBooks error message: The payment amount must be more than zero.")
            open_amount = self.open_amount(txn_id)
            if amount > open_amount:
                raise RequestFailed(3210, f'The "PaymentAmount" field has an invalid value "{money_text(amount)}". '
                                          "QuickBooks error message: The payment amount is more than the open "
                                          f'balance of the bill "{txn_id}" ({money_text(open_amount)}).')
            applied.append((txn_id, amount))
        if not applied:  # the schema asks for one AppliedToTxnAdd at least; without a schema, say so too
            raise RequestFailed(3150, 'There is a missing element: "AppliedToTxnAdd".')
        txn = self._new_txn("BillPaymentCheck", add, request, message_set_id, [], vendor=payee.full_name,
                            ap_account=ap.full_name, bank_account=bank.full_name, applied=applied,
                            to_be_printed=child_text(add, "IsToBePrinted") == "true")
        self.transactions.append(txn)
        return txn

    def _payables_account(self, ref: etree._Element | None) -> ListItem:
        if ref is not None:
            ap = self._resolve(ref, ["account"], "Account", LABEL)
            assert ap is not None
            if ap.account_type != "AccountsPayable":
                raise RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{ap.full_name}" '
                                          f"in the {LABEL}.")
            return ap
        ap = next((a for a in self.lists["account"].values() if a.account_type == "AccountsPayable" and a.is_active),
                  None)
        if ap is None:
            raise RequestFailed(3270, "There is no accounts payable account for the bill payment.")
        return ap

    def pay_bill_by_hand(self, bill_txn_id: str, amount: Decimal | None = None, *,
                         bank_account: str | None = None) -> Txn:
        """What a bookkeeper does in QuickBooks' Pay Bills window: pay (part of) a bill by check.

        Saves a BillPaymentCheck with no ExternalGUID and a check number as RefNumber, from the bill's
        vendor and A/P account, drawn on ``bank_account`` (default: the first active Bank account),
        paying ``amount`` (default: the bill's whole open amount). Nothing goes through ``process_request``.

        Raises:
            KeyError: no bill has this TxnID.
            ValueError: QuickBooks would refuse the payment (the reason carries its status code).
        """
        bill = next((t for t in self.transactions if t.kind == "Bill" and t.txn_id == bill_txn_id), None)
        if bill is None:
            raise KeyError(bill_txn_id)
        if bank_account is None:
            bank = next((a for a in self.lists["account"].values() if a.account_type == "Bank" and a.is_active), None)
            if bank is None:
                raise ValueError("There is no active bank account to pay the bill from.")
            bank_account = bank.full_name
        pay = self.open_amount(bill_txn_id) if amount is None else amount
        number = 1001 + sum(1 for t in self.transactions if t.kind in ("BillPaymentCheck", "Check"))
        add = etree.Element("BillPaymentCheckAdd")
        add_child(etree.SubElement(add, "PayeeEntityRef"), "FullName", bill.vendor)
        add_child(etree.SubElement(add, "APAccountRef"), "FullName", bill.ap_account)
        add_child(add, "TxnDate", self.now().date().isoformat())
        add_child(etree.SubElement(add, "BankAccountRef"), "FullName", bank_account)
        add_child(add, "RefNumber", str(number))
        applied = etree.SubElement(add, "AppliedToTxnAdd")
        add_child(applied, "TxnID", bill_txn_id)
        add_child(applied, "PaymentAmount", money_text(pay))
        try:
            return self._save_bill_payment(add, etree.Element("BillPaymentCheckAddRq"), None)
        except RequestFailed as refused:
            raise ValueError(f"{refused.status.code}: {refused.status.message}") from None
