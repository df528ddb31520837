"""The simulator's state, declared once so each part (lists, bills, journal entries) can use it."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from mlconnector.sandbox.quickbooks.records import (
    LIST_KINDS,
    Hold,
    ListItem,
    RequestFailed,
    Status,
    Txn,
    TxnLine,
    add_child,
    add_ref,
    child_text,
    money_text,
    qb_time,
)


class SimulatorBase:
    """What every part of the simulator shares: the company's state (set up in ``__init__``)."""

    def __init__(
        self,
        *,
        schema_dir: Path | str | None = None,
        max_qbxml_version: str = "13.0",
        company_name: str = "Acme Corp",
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.schema_dir = Path(schema_dir) if schema_dir else None
        self.max_qbxml_version = max_qbxml_version
        self.company_name = company_name
        self.now = now or (lambda: dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
        self.lists: dict[str, dict[str, ListItem]] = {kind: {} for kind in LIST_KINDS}
        self.transactions: list[Txn] = []
        self.requests: list[str] = []
        self.responses: list[str] = []
        self.parse_errors: list[str] = []
        self.message_set_notes: list[str] = []  # why a message set got a non-zero messageSetStatusCode
        self.parse_failures = 0
        # The company file's preferences (what the Host/Company/Preferences answer says).
        self.class_tracking = True
        self.closing_date: str | None = None
        self.journal_numbering = False  # Edit › Preferences › Accounting: automatically assign journal numbers
        self.multicurrency = False
        self.home_currency: str | None = None  # QuickBooks' currency name, e.g. "Euro"
        self.country = "US"  # the edition the Host answer reports
        # Messages QuickBooks refuses whole, as unparsable (0x80040400), for as long as this says so.
        self.refuse_when: Callable[[str], bool] | None = None
        self._holds: list[Hold] = []
        self._forced: dict[str, list[Status]] = {}
        self._recovery: dict[str, tuple[str, str]] = {}  # message set ID -> (checksum, response text)
        # iteratorID -> the records not handed out yet (QuickBooks keeps them for the session)
        self._iterators: dict[str, list[ListItem]] = {}
        self._iterator_count = itertools.count(1)
        self._ids = itertools.count(0x10001)
        self._txn_numbers = itertools.count(1)

    def _new_id(self) -> str:
        return f"{next(self._ids):X}-1700000000"

    def _new_txn(self, kind: str, add: etree._Element, request: etree._Element, message_set_id: str | None,
                 lines: list[TxnLine], **fields: Any) -> Txn:
        """A new transaction from an ``...Add``: its IDs, and the header fields every kind shares unless given."""
        shared: dict[str, Any] = {
            "ref_number": child_text(add, "RefNumber") or "",
            "txn_date": child_text(add, "TxnDate") or self.now().date().isoformat(),
            "memo": child_text(add, "Memo") or "", "external_guid": child_text(add, "ExternalGUID"),
        }
        if "txn_number" not in fields:
            fields["txn_number"] = next(self._txn_numbers)
        return Txn(kind=kind, txn_id=self._new_id(), edit_sequence=str(1700000000 + len(self.transactions)),
                   lines=lines, request_id=request.get("requestID"), message_set_id=message_set_id,
                   created=self.now(), **{**shared, **fields})

    def _resolve(self, ref: etree._Element | None, kinds: Iterable[str], label: str, txn_label: str,
                 *, required: bool = False) -> ListItem | None:
        if ref is None:
            if required:
                raise RequestFailed(3150, f'There is a missing element: "{label}Ref".')
            return None
        list_id, full_name = child_text(ref, "ListID"), child_text(ref, "FullName")
        for kind in kinds:
            if list_id:  # ListID wins when both are given
                match = next((i for i in self.lists[kind].values() if i.list_id == list_id), None)
            else:
                match = self.lists[kind].get((full_name or "").casefold())
            if match is not None and match.is_active:
                return match
        shown = list_id or full_name or ""
        raise RequestFailed(3140, f'There is an invalid reference to QuickBooks {label} "{shown}" in the {txn_label}.')

    def _amount(self, node: etree._Element, field_name: str = "Amount") -> Decimal:
        text = child_text(node, field_name) or ""
        if not re.fullmatch(r"[+\-]?[0-9]{1,13}(\.[0-9]{2})?", text):
            raise RequestFailed(3040, f'There was an error when converting the amount "{text}" in the field "{field_name}".')
        try:
            return Decimal(text)
        except InvalidOperation:
            raise RequestFailed(3040, f'Invalid amount "{text}".') from None

    def open_amount(self, bill_txn_id: str) -> Decimal:
        """A bill's open balance: its total less every saved bill payment applied to it.

        Raises:
            KeyError: no bill has this TxnID.
        """
        bill = next((t for t in self.transactions if t.kind == "Bill" and t.txn_id == bill_txn_id), None)
        if bill is None:
            raise KeyError(bill_txn_id)
        paid = sum((amount for t in self.transactions if t.kind == "BillPaymentCheck"
                    for txn_id, amount in t.applied if txn_id == bill_txn_id), Decimal("0.00"))
        return bill.total - paid

    def _txn_ret(self, txn: Txn, *, include_lines: bool) -> etree._Element:
        ret = etree.Element(f"{txn.kind}Ret")
        add_child(ret, "TxnID", txn.txn_id)
        add_child(ret, "TimeCreated", qb_time(txn.created))
        add_child(ret, "TimeModified", qb_time(txn.created))
        add_child(ret, "EditSequence", txn.edit_sequence)
        add_child(ret, "TxnNumber", txn.txn_number)
        if txn.kind == "BillPaymentCheck":
            self._bill_payment_ret(ret, txn)  # its applied bills always come back: it has no lines
        elif txn.kind != "JournalEntry":
            # Bills, vendor credits, checks and card charges/credits: the party, the account, expense lines.
            for tag, what in _HEADER_REFS.get(txn.kind, _HEADER_REFS["Bill"]):
                if what == "party":
                    party = self.item("vendor", txn.vendor or "") or self.item("customer", txn.vendor or "")
                    add_ref(ret, tag, party, txn.vendor)
                else:
                    add_ref(ret, tag, self.item("account", txn.ap_account or ""), txn.ap_account)
            add_child(ret, "TxnDate", txn.txn_date)
            if txn.kind == "Bill":
                add_child(ret, "DueDate", txn.due_date)
                add_child(ret, "AmountDue", money_text(txn.total))
            elif txn.kind != "VendorCredit":  # checks and card charges/credits state their amount
                add_child(ret, "Amount", money_text(txn.total))
            add_child(ret, "RefNumber", txn.ref_number or None)
            add_child(ret, "Memo", txn.memo or None)
            if txn.kind == "Bill":
                add_child(ret, "IsPaid", "true" if self.open_amount(txn.txn_id) == 0 else "false")
            if txn.kind == "Check":
                add_child(ret, "IsToBePrinted", "true" if txn.to_be_printed else "false")
            add_child(ret, "ExternalGUID", txn.external_guid)
            if include_lines:
                # Expense lines, then item lines, as QuickBooks lists them.
                for line in sorted(txn.lines, key=lambda ln: ln.side == "item"):
                    is_item = line.side == "item"
                    lr = etree.SubElement(ret, "ItemLineRet" if is_item else "ExpenseLineRet")
                    add_child(lr, "TxnLineID", line.txn_line_id)
                    if is_item:
                        add_ref(lr, "ItemRef", self.item("item", line.account), line.account)
                        add_child(lr, "Desc", line.memo or None)
                        add_child(lr, "Amount", money_text(line.amount))
                    else:
                        add_ref(lr, "AccountRef", self.item("account", line.account), line.account)
                        add_child(lr, "Amount", money_text(line.amount))
                        add_child(lr, "Memo", line.memo or None)
                    if line.customer:
                        add_ref(lr, "CustomerRef", self.item("customer", line.customer), line.customer)
                    if line.klass:
                        add_ref(lr, "ClassRef", self.item("class", line.klass), line.klass)
                    add_child(lr, "BillableStatus", line.billable_status)
            if txn.kind == "Bill":
                add_child(ret, "OpenAmount", money_text(self.open_amount(txn.txn_id)))
        else:
            add_child(ret, "TxnDate", txn.txn_date)
            add_child(ret, "RefNumber", txn.ref_number or None)
            add_child(ret, "IsAdjustment", "false")
            add_child(ret, "ExternalGUID", txn.external_guid)
            if include_lines:
                for line in txn.lines:
                    lr = etree.SubElement(ret, "JournalDebitLine" if line.side == "debit" else "JournalCreditLine")
                    add_child(lr, "TxnLineID", line.txn_line_id)
                    add_ref(lr, "AccountRef", self.item("account", line.account), line.account)
                    add_child(lr, "Amount", money_text(line.amount))
                    add_child(lr, "Memo", line.memo or None)
                    if line.customer:
                        entity = self.item("vendor", line.customer) or self.item("customer", line.customer)
                        add_ref(lr, "EntityRef", entity, line.customer)
                    if line.klass:
                        add_ref(lr, "ClassRef", self.item("class", line.klass), line.klass)
                    add_child(lr, "BillableStatus", line.billable_status)
        return ret

    def _bill_payment_ret(self, ret: etree._Element, txn: Txn) -> None:
        """The rest of a BillPaymentCheckRet after TxnNumber, in schema order, with one AppliedToTxnRet per bill."""
        party = self.item("vendor", txn.vendor or "") or self.item("customer", txn.vendor or "")
        add_ref(ret, "PayeeEntityRef", party, txn.vendor)
        add_ref(ret, "APAccountRef", self.item("account", txn.ap_account or ""), txn.ap_account)
        add_child(ret, "TxnDate", txn.txn_date)
        add_ref(ret, "BankAccountRef", self.item("account", txn.bank_account or ""), txn.bank_account)
        add_child(ret, "Amount", money_text(txn.total))
        add_child(ret, "RefNumber", txn.ref_number or None)
        add_child(ret, "Memo", txn.memo or None)
        add_child(ret, "IsToBePrinted", "true" if txn.to_be_printed else "false")
        add_child(ret, "ExternalGUID", txn.external_guid)
        for bill_id, amount in txn.applied:
            bill = next((t for t in self.transactions if t.txn_id == bill_id), None)
            applied = etree.SubElement(ret, "AppliedToTxnRet")
            add_child(applied, "TxnID", bill_id)
            add_child(applied, "TxnType", "Bill")
            if bill is not None:
                add_child(applied, "TxnDate", bill.txn_date)
                add_child(applied, "RefNumber", bill.ref_number or None)
                add_child(applied, "BalanceRemaining", money_text(self.open_amount(bill_id)))
            # The amount this payment applied to the bill, positive (see the notes in bill_payment.py).
            add_child(applied, "Amount", money_text(amount))

    def item(self, kind: str, full_name: str) -> ListItem | None:
        """A list item by kind and full name (case-insensitive)."""
        return self.lists[kind].get(full_name.casefold())

    def find_txns(self, ref_number: str | None = None, kind: str | None = None) -> list[Txn]:
        """Saved transactions, optionally by RefNumber (case-insensitive) and kind (Bill, JournalEntry)."""
        return [t for t in self.transactions
                if (ref_number is None or t.ref_number.casefold() == ref_number.casefold())
                and (kind is None or t.kind == kind)]

    def _expense_lines(self, add: etree._Element, label: str) -> list[TxnLine]:
        """The expense and item lines of a bill, check, vendor credit or card charge, references checked."""
        lines: list[TxnLine] = []
        for line in add.findall("ExpenseLineAdd"):
            account = self._resolve(line.find("AccountRef"), ["account"], "Account", label, required=True)
            customer = self._resolve(line.find("CustomerRef"), ["customer"], "Customer", label)
            klass = self._resolve(line.find("ClassRef"), ["class"], "Class", label)
            billable = child_text(line, "BillableStatus")
            if billable == "Billable" and customer is None:
                raise RequestFailed(3210, 'The "BillableStatus" field has an invalid value "Billable". '
                                           "QuickBooks error message: A billable expense needs a customer:job.")
            assert account is not None
            lines.append(TxnLine(self._new_id(), "expense", account.full_name, self._amount(line),
                                 child_text(line, "Memo") or "", customer.full_name if customer else None,
                                 klass.full_name if klass else None, billable))
        for line in add.findall("ItemLineAdd"):
            item = self._resolve(line.find("ItemRef"), ["item"], "Item", label, required=True)
            customer = self._resolve(line.find("CustomerRef"), ["customer"], "Customer", label)
            klass = self._resolve(line.find("ClassRef"), ["class"], "Class", label)
            assert item is not None
            lines.append(TxnLine(self._new_id(), "item", item.full_name, self._amount(line),
                                 child_text(line, "Desc") or "", customer.full_name if customer else None,
                                 klass.full_name if klass else None, child_text(line, "BillableStatus")))
        if add.find("ItemGroupLineAdd") is not None:
            raise RequestFailed(1030, "The simulator does not support item group lines.")
        if not lines:
            raise RequestFailed(3180, f"There was an error when saving a {label}. QuickBooks error message: "
                                       "Transactions must have at least one line.")
        return lines


# The party and account elements of each expense-style transaction's Ret, in schema order.
_HEADER_REFS = {
    "Bill": (("VendorRef", "party"), ("APAccountRef", "account")),
    "VendorCredit": (("VendorRef", "party"), ("APAccountRef", "account")),
    "Check": (("AccountRef", "account"), ("PayeeEntityRef", "party")),
    "CreditCardCharge": (("AccountRef", "account"), ("PayeeEntityRef", "party")),
    "CreditCardCredit": (("AccountRef", "account"), ("PayeeEntityRef", "party")),
}
