"""A QuickBooks Desktop company simulator: qbXML request text in, qbXML response text out.

Written from QBXML.md and Intuit's schemas, independently of ml-connector's qbXML builders, so that
tests compare two honest implementations. What it models:

- an in-memory company: accounts (with types), vendors (with emails), classes and customers:jobs, each
  with ListID, EditSequence and IsActive; seed it with ``add_account`` & co. or :meth:`seeded`;
- ``AccountQueryRq``/``VendorQueryRq``/``ClassQueryRq``/``CustomerQueryRq`` by ListID or FullName list
  (status 1 when nothing matches, 500 when only some names match) or by ActiveStatus;
- ``BillAddRq`` and ``JournalEntryAddRq`` with reference checks (3140 for a missing or inactive
  account, vendor, customer or class), 3210 for an unbalanced journal entry, a negative journal
  amount, or a billable line without a customer; answers carry TxnID, EditSequence and TxnLineIDs;
- ``BillQueryRq``/``JournalEntryQueryRq`` by TxnID, RefNumber or simple filters (status 1 when none);
- ``BillPaymentCheckAddRq`` paying open bills (see ``bill_payment``): a bill's OpenAmount and IsPaid
  follow the payments applied to it; ``BillPaymentCheckQueryRq``; :meth:`pay_bill_by_hand` for what a
  bookkeeper pays in QuickBooks itself;
- ``onError`` stopOnError / continueOnError, ``requestID`` echoed on every response;
- error recovery: ``newMessageSetID`` stores the response; the same ID again with the same request
  returns the stored response without executing anything (9001 if the request differs). A status
  check is an ``oldMessageSetID`` on a message set without requests, or equal to its
  ``newMessageSetID``: it answers the stored response with ``messageSetStatusCode="0"``, or 600 when
  nothing is stored, and executes nothing. An ``oldMessageSetID`` on a set that has requests and
  another (or no) ``newMessageSetID`` clears the old record, then the requests run (Intuit's sample
  pattern). ``ClearAllMessageSets`` clears all; IDs over 23 characters get 9004;
- with ``schema_dir`` (the folder holding ``v130/`` and ``v160/``), each request is validated against
  Intuit's XSD for its ``<?qbxml version?>``; invalid XML or element order raises
  :class:`ProcessRequestError` with hresult 0x80040400, as QuickBooks' ProcessRequest does.

Every added transaction is kept in :attr:`QuickBooksSimulator.transactions` so tests can assert
"exactly once". Fault switches: :meth:`fail_next` (a status code on the next request of a type) and
:attr:`parse_failures` (the next N requests fail with the parse hresult).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from lxml import etree

from mlconnector.sandbox.quickbooks.base import SimulatorBase
from mlconnector.sandbox.quickbooks.bill import BillAdds
from mlconnector.sandbox.quickbooks.bill_payment import BillPayments
from mlconnector.sandbox.quickbooks.check import CheckAdds
from mlconnector.sandbox.quickbooks.credit_card import CreditCardAdds
from mlconnector.sandbox.quickbooks.editions import annotated_file, unavailable_elements, unavailable_in
from mlconnector.sandbox.quickbooks.journal import JournalAdds
from mlconnector.sandbox.quickbooks.lists import ListQueries
from mlconnector.sandbox.quickbooks.records import (
    MAX_MESSAGE_SET_ID,
    PARSE_ERROR_HRESULT,
    PARSE_ERROR_MESSAGE,
    PARSER,
    SUPPORTED_VERSIONS,
    Hold,
    ListItem,
    ProcessRequestError,
    RequestFailed,
    Status,
    Txn,
    add_child,
    load_schema,
    serialize,
    version_of,
    version_tuple,
    with_attributes,
)
from mlconnector.sandbox.quickbooks.txns import TxnQueries
from mlconnector.sandbox.quickbooks.vendor_credit import VendorCreditAdds


class QuickBooksSimulator(ListQueries, BillAdds, BillPayments, JournalAdds, VendorCreditAdds, CheckAdds, CreditCardAdds,
                         TxnQueries, SimulatorBase):
    """An in-memory QuickBooks company answering qbXML.

    Args:
        schema_dir: folder with Intuit's ``v130/`` and ``v160/`` schemas; when given, every request is
            validated against the schema of its ``<?qbxml version?>``.
        max_qbxml_version: the highest qbXML version this "QuickBooks" accepts.
        company_name: shown in the Host/Company/Preferences response.
        now: the clock for TimeCreated/TimeModified.
    """

    def _add_item(self, kind: str, full_name: str, list_id: str | None = None, **values: object) -> ListItem:
        item = ListItem(kind=kind, list_id=list_id or self._new_id(), full_name=full_name,
                        edit_sequence="1700000000", created=self.now(), **values)  # type: ignore[arg-type]
        self.lists[kind][full_name.casefold()] = item
        return item

    def add_service_item(self, full_name: str, *, active: bool = True, list_id: str | None = None) -> ListItem:
        """Add a service item (what an expense category may map to with ``map set item``)."""
        return self._add_item("item", full_name, list_id, is_active=active)

    def add_account(self, full_name: str, account_type: str = "Expense", *, active: bool = True,
                    list_id: str | None = None) -> ListItem:
        """Add an account (``account_type`` as qbXML spells it: Expense, AccountsPayable, ...)."""
        return self._add_item("account", full_name, list_id, account_type=account_type, is_active=active)

    def add_vendor(self, name: str, *, email: str | None = None, active: bool = True,
                   list_id: str | None = None) -> ListItem:
        """Add a vendor (vendors are not hierarchical)."""
        return self._add_item("vendor", name, list_id, email=email, is_active=active)

    def add_class(self, full_name: str, *, active: bool = True, list_id: str | None = None) -> ListItem:
        """Add a class (``Parent:Child`` allowed)."""
        return self._add_item("class", full_name, list_id, is_active=active)

    def add_customer(self, full_name: str, *, email: str | None = None, active: bool = True,
                     list_id: str | None = None) -> ListItem:
        """Add a customer or job (``Customer:Job``)."""
        return self._add_item("customer", full_name, list_id, email=email, is_active=active)

    def set_active(self, kind: str, full_name: str, active: bool) -> ListItem:
        """Make a list item active or inactive (its EditSequence changes, as in QuickBooks)."""
        item = self.lists[kind][full_name.casefold()]
        item.is_active = active
        item.edit_sequence = str(int(item.edit_sequence) + 1)
        return item

    @classmethod
    def seeded(cls, **options: object) -> QuickBooksSimulator:
        """A small company with the usual expense accounts, two employees as vendors, classes and jobs."""
        sim = cls(**options)  # type: ignore[arg-type]
        sim.add_account("Accounts Payable", "AccountsPayable")
        sim.add_account("Employee Reimbursements", "OtherCurrentLiability")
        sim.add_account("Corporate Card", "CreditCard")
        sim.add_account("Checking", "Bank")
        for name in ("Travel Expense", "Travel Expense:Airfare", "Travel Expense:Lodging", "Meals and Entertainment",
                     "Office Supplies", "Automobile Expense", "Telephone Expense"):
            sim.add_account(name)
        sim.add_vendor("Ann Smith", email="ann@example.com")
        sim.add_vendor("Bob Jones", email="bob@example.com")
        sim.add_vendor("Credit Card Misc.")  # the default card_vendor_fallback
        sim.add_vendor("Delta Air Lines")  # a card merchant's vendor (same name as in Expensify)
        for name in ("Sales", "Engineering", "Admin"):
            sim.add_class(name)
        sim.add_customer("Acme Corp")
        sim.add_customer("Acme Corp:Project X")
        return sim

    def bills(self) -> list[Txn]:
        """Saved bills, in the order they were added."""
        return self.find_txns(kind="Bill")

    def bill_payments(self) -> list[Txn]:
        """Saved bill payments (BillPaymentCheck), in the order they were added, by request or by hand."""
        return self.find_txns(kind="BillPaymentCheck")

    def journal_entries(self) -> list[Txn]:
        """Saved journal entries, in the order they were added."""
        return self.find_txns(kind="JournalEntry")

    def fail_next(self, request_type: str, code: int, message: str, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``request_type`` (e.g. "BillAddRq") with this status."""
        self._forced.setdefault(request_type, []).extend(Status(code, message) for _ in range(times))

    def hold(self, request_type: str = "BillAddRq", *, timeout: float = 30.0) -> Hold:
        """Keep the next message containing ``request_type`` inside QuickBooks until the hold is released."""
        held = Hold(request_type, timeout)
        self._holds.append(held)
        return held

    def hcp_response(self) -> str:
        """The Host/Company/Preferences response the Web Connector sends on the first sendRequestXML."""
        root = etree.Element("QBXML")
        msgs = etree.SubElement(root, "QBXMLMsgsRs")
        for number, (name, fill) in enumerate((("HostQueryRs", self._host_ret), ("CompanyQueryRs", self._company_ret),
                                               ("PreferencesQueryRs", self._preferences_ret))):
            rs = etree.SubElement(msgs, name, requestID=str(number), statusCode="0", statusSeverity="Info",
                                  statusMessage="Status OK")
            fill(rs)
        return serialize(root)

    def _host_ret(self, rs: etree._Element) -> None:
        ret = etree.SubElement(rs, "HostRet")
        add_child(ret, "ProductName", "QuickBooks Enterprise Solutions: Accountant 24.0 (ml-connector simulator)")
        add_child(ret, "MajorVersion", 34)
        add_child(ret, "MinorVersion", 0)
        add_child(ret, "Country", self.country)
        limit = version_tuple(self.max_qbxml_version)
        for version in SUPPORTED_VERSIONS:
            if version_tuple(version) <= limit:
                add_child(ret, "SupportedQBXMLVersion", version)
        add_child(ret, "IsAutomaticLogin", "true")
        add_child(ret, "QBFileMode", "SingleUser")

    def _company_ret(self, rs: etree._Element) -> None:
        cret = etree.SubElement(rs, "CompanyRet")
        add_child(cret, "IsSampleCompany", "false")
        add_child(cret, "CompanyName", self.company_name)

    def _preferences_ret(self, rs: etree._Element) -> None:
        ret = etree.SubElement(rs, "PreferencesRet")
        pret = etree.SubElement(ret, "AccountingPreferences")
        for name, value in (("IsUsingAccountNumbers", "false"), ("IsRequiringAccounts", "true"),
                            ("IsUsingClassTracking", "true" if self.class_tracking else "false"),
                            ("IsUsingAuditTrail", "true"),
                            ("IsAssigningJournalEntryNumbers", "true" if self.journal_numbering else "false")):
            add_child(pret, name, value)
        add_child(pret, "ClosingDate", self.closing_date)
        money = etree.SubElement(ret, "MultiCurrencyPreferences")
        add_child(money, "IsMultiCurrencyOn", "true" if self.multicurrency else "false")
        if self.multicurrency and self.home_currency:
            add_child(etree.SubElement(money, "HomeCurrencyRef"), "FullName", self.home_currency)

    def process_request(self, text: str) -> str:
        """Answer one qbXML request message set, as QuickBooks' ProcessRequest does.

        Raises:
            ProcessRequestError: the request is not well-formed, not valid against the schema of its
                version, or asks for a version this QuickBooks does not speak.
        """
        self.requests.append(text)
        held = next((h for h in self._holds if h.request_type in text and not h.entered.is_set()), None)
        if held is not None:
            held.entered.set()
            if not held.released.wait(held.timeout):  # a test that forgot to release must not hang
                raise ProcessRequestError("0x80040402", "The held request was never released.", detail="hold")
        if self.refuse_when is not None and self.refuse_when(text):
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail="refused by refuse_when")
        if self.parse_failures > 0:
            self.parse_failures -= 1
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail="injected fault")
        root = self._parse(text)
        msgs = root.find("QBXMLMsgsRq")
        if msgs is None:
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail="no QBXMLMsgsRq")
        response = self._process_message_set(msgs)
        self.responses.append(response)
        return response

    def _parse(self, text: str) -> etree._Element:
        try:
            root = etree.fromstring(text.encode("utf-8"), PARSER)
        except (etree.XMLSyntaxError, ValueError) as exc:
            self.parse_errors.append(str(exc))
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail=str(exc)) from None
        version = version_of(root)
        if version is None or root.tag != "QBXML":
            self.parse_errors.append("missing <?qbxml version?> or QBXML root")
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail="no qbxml version")
        if version_tuple(version) > version_tuple(self.max_qbxml_version):
            detail = f"qbXML {version} is above this QuickBooks' {self.max_qbxml_version}"
            self.parse_errors.append(detail)
            raise ProcessRequestError(
                "0x80040428", "The version of QBXML that was requested is not supported or is unknown.",
                detail=detail)
        if self.schema_dir is not None:
            folder = "v160" if version_tuple(version) >= (14, 0) else "v130"
            schema = load_schema(str(self.schema_dir / folder / f"qbxmlops{folder[1:]}.xsd"))
            if not schema.validate(root):
                detail = "; ".join(str(e.message) for e in schema.error_log)[:2000]
                self.parse_errors.append(detail)
                raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail=detail)
            # Each edition's QuickBooks has its own schema: refuse what the annotations say it lacks.
            table = unavailable_elements(str(annotated_file(self.schema_dir, version)))
            lacking = [path for rq in root.iterfind("QBXMLMsgsRq/*")
                       for path in unavailable_in(rq, self.country, table)]
            if lacking:
                detail = f"not in the {self.country} edition: " + ", ".join(sorted(set(lacking)))
                self.parse_errors.append(detail)
                raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail=detail)
        return root

    def _process_message_set(self, msgs: etree._Element) -> str:
        on_error = msgs.get("onError", "stopOnError")
        if on_error == "rollbackOnError":
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE,
                                      detail="rollbackOnError is not supported by QuickBooks Desktop")
        new_id, old_id = msgs.get("newMessageSetID"), msgs.get("oldMessageSetID")
        checksum = hashlib.sha256(b"".join(etree.tostring(c, method="c14n") for c in msgs)
                                  + on_error.encode()).hexdigest()
        for given in (new_id, old_id):
            if given and given != "ClearAllMessageSets" and len(given) > MAX_MESSAGE_SET_ID:
                return self._set_status(new_id, 9004, "The message set ID is too long.")
        has_requests = any(isinstance(child.tag, str) for child in msgs)
        if old_id == "ClearAllMessageSets":
            self._recovery.clear()
        elif old_id and (not has_requests or new_id == old_id):
            stored = self._recovery.get(old_id)
            if stored is None:
                return self._set_status(new_id, 600, "No cleared state to return: the message set ID is unknown.")
            return with_attributes(stored[1], messageSetStatusCode="0")
        elif old_id:
            self._recovery.pop(old_id, None)
        if new_id and new_id in self._recovery:
            stored_checksum, stored_response = self._recovery[new_id]
            if stored_checksum != checksum:
                return self._set_status(new_id, 9001, "Invalid checksum: this message set ID was used for another request.")
            return stored_response  # a repeat: answered from the record, nothing executed again
        root = etree.Element("QBXML")
        out = etree.SubElement(root, "QBXMLMsgsRs")
        if new_id:
            out.set("newMessageSetID", new_id)
            out.set("messageSetStatusCode", "0")
        for request in msgs:
            if not isinstance(request.tag, str):
                continue
            rs = self._answer(request, new_id)
            out.append(rs)
            if on_error == "stopOnError" and rs.get("statusSeverity") == "Error":
                break
        response = serialize(root)
        if new_id:
            self._recovery[new_id] = (checksum, response)
        return response

    def _set_status(self, new_id: str | None, code: int, message: str) -> str:
        root = etree.Element("QBXML")
        out = etree.SubElement(root, "QBXMLMsgsRs", messageSetStatusCode=str(code))
        if new_id:
            out.set("newMessageSetID", new_id)
        self.message_set_notes.append(f"{code}: {message}")
        return serialize(root)

    def _answer(self, request: etree._Element, message_set_id: str | None) -> etree._Element:
        name = request.tag
        rs = etree.Element(name[:-2] + "Rs" if name.endswith("Rq") else name + "Rs")
        if request.get("requestID") is not None:
            rs.set("requestID", request.get("requestID", ""))
        status = Status(0, "Status OK")
        forced = self._forced.get(name)
        try:
            if forced:
                raise RequestFailed(forced[0].code, forced.pop(0).message)
            handlers: dict[str, Callable[[], Status | None]] = {
                "AccountQueryRq": lambda: self._list_query(request, rs, "account"),
                "VendorQueryRq": lambda: self._list_query(request, rs, "vendor"),
                "ClassQueryRq": lambda: self._list_query(request, rs, "class"),
                "CustomerQueryRq": lambda: self._list_query(request, rs, "customer"),
                "ItemQueryRq": lambda: self._list_query(request, rs, "item"),
                "HostQueryRq": lambda: self._host_ret(rs),
                "CompanyQueryRq": lambda: self._company_ret(rs),
                "PreferencesQueryRq": lambda: self._preferences_ret(rs),
                "BillAddRq": lambda: self._bill_add(request, rs, message_set_id),
                "JournalEntryAddRq": lambda: self._journal_add(request, rs, message_set_id),
                "BillQueryRq": lambda: self._txn_query(request, rs, "Bill"),
                "VendorCreditAddRq": lambda: self._vendor_credit_add(request, rs, message_set_id),
                "VendorCreditQueryRq": lambda: self._txn_query(request, rs, "VendorCredit"),
                "CheckAddRq": lambda: self._check_add(request, rs, message_set_id),
                "CheckQueryRq": lambda: self._txn_query(request, rs, "Check"),
                "JournalEntryQueryRq": lambda: self._txn_query(request, rs, "JournalEntry"),
                "CreditCardChargeAddRq": lambda: self._card_add(request, rs, message_set_id, "CreditCardCharge"),
                "CreditCardCreditAddRq": lambda: self._card_add(request, rs, message_set_id, "CreditCardCredit"),
                "CreditCardChargeQueryRq": lambda: self._txn_query(request, rs, "CreditCardCharge"),
                "CreditCardCreditQueryRq": lambda: self._txn_query(request, rs, "CreditCardCredit"),
                "BillPaymentCheckAddRq": lambda: self._bill_payment_add(request, rs, message_set_id),
                "BillPaymentCheckQueryRq": lambda: self._txn_query(request, rs, "BillPaymentCheck"),
            }
            handler = handlers.get(name)
            if handler is None:
                raise RequestFailed(1030, f"The simulator does not support {name}.")
            status = handler() or status
        except RequestFailed as failure:
            status = failure.status
            for child in list(rs):
                rs.remove(child)
        rs.set("statusCode", str(status.code))
        rs.set("statusSeverity", status.severity)
        rs.set("statusMessage", status.message)
        return rs
