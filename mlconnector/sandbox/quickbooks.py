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

import datetime as dt
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from lxml import etree

from mlconnector.errors import MlConnectorError

PARSE_ERROR_HRESULT = "0x80040400"
PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."
NO_MATCH = "A query request did not find a matching object in QuickBooks"
MAX_MESSAGE_SET_ID = 23
SUPPORTED_VERSIONS = ("1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "9.0", "10.0", "11.0", "12.0", "13.0",
                      "14.0", "15.0", "16.0")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_pis=False,
                          remove_comments=True, huge_tree=True)

LIST_KINDS = {"account": "Account", "vendor": "Vendor", "class": "Class", "customer": "Customer"}


class ProcessRequestError(MlConnectorError):
    """QuickBooks could not process the request at all (what the Web Connector passes on as hresult)."""

    def __init__(self, hresult: str, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.hresult = hresult
        self.detail = detail


@dataclass
class ListItem:
    """One account, vendor, class or customer:job."""

    kind: str
    list_id: str
    full_name: str
    edit_sequence: str
    is_active: bool = True
    account_type: str | None = None
    email: str | None = None
    created: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))

    @property
    def name(self) -> str:
        """The last segment of the full name."""
        return self.full_name.split(":")[-1]


@dataclass
class TxnLine:
    """One expense line (bill) or debit/credit line (journal entry) as QuickBooks stored it."""

    txn_line_id: str
    side: str  # expense | debit | credit
    account: str
    amount: Decimal
    memo: str = ""
    customer: str | None = None  # bill: CustomerRef; journal: EntityRef
    klass: str | None = None
    billable_status: str | None = None


@dataclass
class Txn:
    """A transaction QuickBooks saved."""

    kind: str  # Bill | JournalEntry
    txn_id: str
    edit_sequence: str
    txn_number: int
    ref_number: str
    txn_date: str
    lines: list[TxnLine]
    vendor: str | None = None
    ap_account: str | None = None
    due_date: str | None = None
    memo: str = ""
    external_guid: str | None = None
    request_id: str | None = None
    message_set_id: str | None = None
    created: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))

    @property
    def total(self) -> Decimal:
        """Bill: sum of expense lines. Journal entry: sum of debits."""
        return sum((ln.amount for ln in self.lines if ln.side in ("expense", "debit")), Decimal("0.00"))


@dataclass
class _Status:
    code: int
    message: str

    @property
    def severity(self) -> str:
        if self.code < 500:
            return "Info"
        return "Warn" if self.code < 1000 else "Error"


class _RequestFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.status = _Status(code, message)


@lru_cache(maxsize=4)
def _schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path))


def _version_of(root: etree._Element) -> str | None:
    node = root.getprevious()
    while node is not None:
        if isinstance(node, etree._ProcessingInstruction) and node.target == "qbxml":
            found = re.search(r'version\s*=\s*"([^"]+)"', node.text or "")
            return found.group(1) if found else None
        node = node.getprevious()
    return None


def _text(parent: etree._Element, path: str) -> str | None:
    node = parent.find(path)
    return None if node is None else (node.text or "")


def _add(parent: etree._Element, tag: str, text: object | None) -> etree._Element | None:
    if text is None:
        return None
    child = etree.SubElement(parent, tag)
    child.text = str(text)
    return child


def _ref(parent: etree._Element, tag: str, item: ListItem | None, fallback: str | None = None) -> None:
    if item is None and not fallback:
        return
    ref = etree.SubElement(parent, tag)
    if item is not None:
        _add(ref, "ListID", item.list_id)
        _add(ref, "FullName", item.full_name)
    else:
        _add(ref, "FullName", fallback)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


@dataclass
class Hold:
    """A message kept "inside QuickBooks" until :meth:`release`, as a slow QuickBooks keeps a large batch.

    The Web Connector that sent it waits meanwhile (its ``process_request`` call blocks), so another
    session can log in; on release QuickBooks applies the message and the first Web Connector answers.
    """

    request_type: str
    timeout: float = 30.0
    entered: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        """Let QuickBooks finish the held message."""
        self.released.set()

    def wait_entered(self) -> bool:
        """Block until a matching message is inside QuickBooks (bounded by ``timeout``)."""
        return self.entered.wait(self.timeout)


class QuickBooksSimulator:
    """An in-memory QuickBooks company answering qbXML.

    Args:
        schema_dir: folder with Intuit's ``v130/`` and ``v160/`` schemas; when given, every request is
            validated against the schema of its ``<?qbxml version?>``.
        max_qbxml_version: the highest qbXML version this "QuickBooks" accepts.
        company_name: shown in the Host/Company/Preferences response.
        now: the clock for TimeCreated/TimeModified.
    """

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
        # Messages QuickBooks refuses whole, as unparsable (0x80040400), for as long as this says so.
        self.refuse_when: Callable[[str], bool] | None = None
        self._holds: list[Hold] = []
        self._forced: dict[str, list[_Status]] = {}
        self._recovery: dict[str, tuple[str, str]] = {}  # message set ID -> (checksum, response text)
        # iteratorID -> the records not handed out yet (QuickBooks keeps them for the session)
        self._iterators: dict[str, list[ListItem]] = {}
        self._iterator_count = itertools.count(1)
        self._ids = itertools.count(0x10001)
        self._txn_numbers = itertools.count(1)

    # ------------------------------------------------------------------------------ seeding

    def _new_id(self) -> str:
        return f"{next(self._ids):X}-1700000000"

    def _add_item(self, kind: str, full_name: str, list_id: str | None = None, **values: object) -> ListItem:
        item = ListItem(kind=kind, list_id=list_id or self._new_id(), full_name=full_name,
                        edit_sequence="1700000000", created=self.now(), **values)  # type: ignore[arg-type]
        self.lists[kind][full_name.casefold()] = item
        return item

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

    def item(self, kind: str, full_name: str) -> ListItem | None:
        """A list item by kind and full name (case-insensitive)."""
        return self.lists[kind].get(full_name.casefold())

    @classmethod
    def seeded(cls, **options: object) -> QuickBooksSimulator:
        """A small company with the usual expense accounts, two employees as vendors, classes and jobs."""
        sim = cls(**options)  # type: ignore[arg-type]
        sim.add_account("Accounts Payable", "AccountsPayable")
        sim.add_account("Employee Reimbursements", "OtherCurrentLiability")
        sim.add_account("Corporate Card", "CreditCard")
        for name in ("Travel Expense", "Travel Expense:Airfare", "Travel Expense:Lodging", "Meals and Entertainment",
                     "Office Supplies", "Automobile Expense", "Telephone Expense"):
            sim.add_account(name)
        sim.add_vendor("Ann Smith", email="ann@example.com")
        sim.add_vendor("Bob Jones", email="bob@example.com")
        for name in ("Sales", "Engineering", "Admin"):
            sim.add_class(name)
        sim.add_customer("Acme Corp")
        sim.add_customer("Acme Corp:Project X")
        return sim

    # ------------------------------------------------------------------------- inspection

    def find_txns(self, ref_number: str | None = None, kind: str | None = None) -> list[Txn]:
        """Saved transactions, optionally by RefNumber (case-insensitive) and kind (Bill, JournalEntry)."""
        return [t for t in self.transactions
                if (ref_number is None or t.ref_number.casefold() == ref_number.casefold())
                and (kind is None or t.kind == kind)]

    def bills(self) -> list[Txn]:
        """Saved bills, in the order they were added."""
        return self.find_txns(kind="Bill")

    def journal_entries(self) -> list[Txn]:
        """Saved journal entries, in the order they were added."""
        return self.find_txns(kind="JournalEntry")

    # ----------------------------------------------------------------------- fault switches

    def fail_next(self, request_type: str, code: int, message: str, times: int = 1) -> None:
        """Answer the next ``times`` requests of ``request_type`` (e.g. "BillAddRq") with this status."""
        self._forced.setdefault(request_type, []).extend(_Status(code, message) for _ in range(times))

    def hold(self, request_type: str = "BillAddRq", *, timeout: float = 30.0) -> Hold:
        """Keep the next message containing ``request_type`` inside QuickBooks until the hold is released."""
        held = Hold(request_type, timeout)
        self._holds.append(held)
        return held

    # ---------------------------------------------------------------------- host/company

    def hcp_response(self) -> str:
        """The Host/Company/Preferences response the Web Connector sends on the first sendRequestXML."""
        root = etree.Element("QBXML")
        msgs = etree.SubElement(root, "QBXMLMsgsRs")
        host = etree.SubElement(msgs, "HostQueryRs", requestID="0", statusCode="0", statusSeverity="Info",
                                statusMessage="Status OK")
        ret = etree.SubElement(host, "HostRet")
        _add(ret, "ProductName", "QuickBooks Enterprise Solutions: Accountant 24.0 (ml-connector simulator)")
        _add(ret, "MajorVersion", 34)
        _add(ret, "MinorVersion", 0)
        _add(ret, "Country", "US")
        limit = _version_tuple(self.max_qbxml_version)
        for version in SUPPORTED_VERSIONS:
            if _version_tuple(version) <= limit:
                _add(ret, "SupportedQBXMLVersion", version)
        _add(ret, "IsAutomaticLogin", "true")
        _add(ret, "QBFileMode", "SingleUser")
        company = etree.SubElement(msgs, "CompanyQueryRs", requestID="1", statusCode="0", statusSeverity="Info",
                                   statusMessage="Status OK")
        cret = etree.SubElement(company, "CompanyRet")
        _add(cret, "IsSampleCompany", "false")
        _add(cret, "CompanyName", self.company_name)
        prefs = etree.SubElement(msgs, "PreferencesQueryRs", requestID="2", statusCode="0", statusSeverity="Info",
                                 statusMessage="Status OK")
        pret = etree.SubElement(etree.SubElement(prefs, "PreferencesRet"), "AccountingPreferences")
        for name, value in (("IsUsingAccountNumbers", "false"), ("IsRequiringAccounts", "true"),
                            ("IsUsingClassTracking", "true"), ("IsUsingAuditTrail", "true"),
                            ("IsAssigningJournalEntryNumbers", "false")):
            _add(pret, name, value)
        return _serialize(root)

    # ----------------------------------------------------------------------------- process

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
            root = etree.fromstring(text.encode("utf-8"), _PARSER)
        except (etree.XMLSyntaxError, ValueError) as exc:
            self.parse_errors.append(str(exc))
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail=str(exc)) from None
        version = _version_of(root)
        if version is None or root.tag != "QBXML":
            self.parse_errors.append("missing <?qbxml version?> or QBXML root")
            raise ProcessRequestError(PARSE_ERROR_HRESULT, PARSE_ERROR_MESSAGE, detail="no qbxml version")
        if _version_tuple(version) > _version_tuple(self.max_qbxml_version):
            detail = f"qbXML {version} is above this QuickBooks' {self.max_qbxml_version}"
            self.parse_errors.append(detail)
            raise ProcessRequestError(
                "0x80040428", "The version of QBXML that was requested is not supported or is unknown.",
                detail=detail)
        if self.schema_dir is not None:
            folder = "v160" if _version_tuple(version) >= (14, 0) else "v130"
            schema = _schema(str(self.schema_dir / folder / f"qbxmlops{folder[1:]}.xsd"))
            if not schema.validate(root):
                detail = "; ".join(str(e.message) for e in schema.error_log)[:2000]
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
            return _with_attributes(stored[1], messageSetStatusCode="0")
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
        response = _serialize(root)
        if new_id:
            self._recovery[new_id] = (checksum, response)
        return response

    def _set_status(self, new_id: str | None, code: int, message: str) -> str:
        root = etree.Element("QBXML")
        out = etree.SubElement(root, "QBXMLMsgsRs", messageSetStatusCode=str(code))
        if new_id:
            out.set("newMessageSetID", new_id)
        self.message_set_notes.append(f"{code}: {message}")
        return _serialize(root)

    def _answer(self, request: etree._Element, message_set_id: str | None) -> etree._Element:
        name = request.tag
        rs = etree.Element(name[:-2] + "Rs" if name.endswith("Rq") else name + "Rs")
        if request.get("requestID") is not None:
            rs.set("requestID", request.get("requestID", ""))
        status = _Status(0, "Status OK")
        forced = self._forced.get(name)
        try:
            if forced:
                raise _RequestFailed(forced[0].code, forced.pop(0).message)
            handlers: dict[str, Callable[[], _Status | None]] = {
                "AccountQueryRq": lambda: self._list_query(request, rs, "account"),
                "VendorQueryRq": lambda: self._list_query(request, rs, "vendor"),
                "ClassQueryRq": lambda: self._list_query(request, rs, "class"),
                "CustomerQueryRq": lambda: self._list_query(request, rs, "customer"),
                "BillAddRq": lambda: self._bill_add(request, rs, message_set_id),
                "JournalEntryAddRq": lambda: self._journal_add(request, rs, message_set_id),
                "BillQueryRq": lambda: self._txn_query(request, rs, "Bill"),
                "JournalEntryQueryRq": lambda: self._txn_query(request, rs, "JournalEntry"),
            }
            handler = handlers.get(name)
            if handler is None:
                raise _RequestFailed(1030, f"The simulator does not support {name}.")
            status = handler() or status
        except _RequestFailed as failure:
            status = failure.status
            for child in list(rs):
                rs.remove(child)
        rs.set("statusCode", str(status.code))
        rs.set("statusSeverity", status.severity)
        rs.set("statusMessage", status.message)
        return rs

    # ---------------------------------------------------------------------------- lists

    def _page(self, request: etree._Element, selected: list[ListItem]) -> tuple[list[ListItem], str, int]:
        """One page of an iterator: Start keeps the rest under a new iteratorID, Continue hands out more."""
        size = int(_text(request, "MaxReturned") or 0) or len(selected) or 1
        if request.get("iterator") == "Start":
            iterator_id = "{%08X-0000-4000-8000-000000000000}" % next(self._iterator_count)
            remaining = selected
        else:
            iterator_id = request.get("iteratorID") or ""
            if iterator_id not in self._iterators:
                raise _RequestFailed(3000, f'The given object ID "{iterator_id}" in the field "iteratorID" is invalid.')
            remaining = self._iterators.pop(iterator_id)
        page, rest = remaining[:size], remaining[size:]
        if rest:
            self._iterators[iterator_id] = rest
        return page, iterator_id, len(rest)

    def _list_query(self, request: etree._Element, rs: etree._Element, kind: str) -> _Status | None:
        items = list(self.lists[kind].values())
        by_id = [e.text or "" for e in request.findall("ListID")]
        by_name = [e.text or "" for e in request.findall("FullName")]
        missing: list[str] = []
        if by_id or by_name:
            found = []
            for list_id in by_id:
                match = next((i for i in items if i.list_id == list_id), None)
                found.append(match) if match else missing.append(list_id)
            for name in by_name:
                match = self.lists[kind].get(name.casefold())
                found.append(match) if match else missing.append(name)
            selected = [i for i in found if i is not None]
        else:
            filters = request.find("ListFilter")
            scope = filters if filters is not None else request
            status = _text(scope, "ActiveStatus") or "ActiveOnly"
            types = [e.text for e in scope.findall("AccountType")]
            selected = [i for i in items
                        if (status == "All" or (status == "ActiveOnly") == i.is_active)
                        and (not types or i.account_type in types)]
            name_filter = scope.find("NameFilter")
            if name_filter is not None:
                how, text = _text(name_filter, "MatchCriterion"), (_text(name_filter, "Name") or "").casefold()
                test = {"StartsWith": str.startswith, "Contains": str.__contains__, "EndsWith": str.endswith}
                selected = [i for i in selected if test.get(how or "StartsWith", str.startswith)(
                    i.full_name.casefold(), text)]
            max_returned = _text(scope, "MaxReturned")
            if max_returned and request.get("iterator") is None:
                selected = selected[: int(max_returned)]
        if request.get("iterator") in ("Start", "Continue"):
            selected, iterator_id, remaining = self._page(request, selected)
            rs.set("iteratorRemainingCount", str(remaining))
            rs.set("iteratorID", iterator_id)
        if not selected:
            raise _RequestFailed(1, NO_MATCH)
        for item in selected:
            rs.append(self._list_ret(item))
        if missing:
            return _Status(500, "The query request has not been fully completed. There was a required element "
                                f'("{missing[0]}") that could not be found in QuickBooks.')
        return None

    def _list_ret(self, item: ListItem) -> etree._Element:
        tag = {"account": "AccountRet", "vendor": "VendorRet", "class": "ClassRet", "customer": "CustomerRet"}[item.kind]
        ret = etree.Element(tag)
        _add(ret, "ListID", item.list_id)
        _add(ret, "TimeCreated", _time(item.created))
        _add(ret, "TimeModified", _time(item.created))
        _add(ret, "EditSequence", item.edit_sequence)
        _add(ret, "Name", item.name)
        if item.kind != "vendor":
            _add(ret, "FullName", item.full_name)
        _add(ret, "IsActive", "true" if item.is_active else "false")
        if item.kind != "vendor":
            if ":" in item.full_name:
                parent = self.lists[item.kind].get(item.full_name.rsplit(":", 1)[0].casefold())
                if parent is not None:
                    _ref(ret, "ParentRef", parent)
            _add(ret, "Sublevel", item.full_name.count(":"))
        if item.kind == "account":
            _add(ret, "AccountType", item.account_type)
        if item.email and item.kind in ("vendor", "customer"):
            _add(ret, "Email", item.email)
        return ret

    def _resolve(self, ref: etree._Element | None, kinds: Iterable[str], label: str, txn_label: str,
                 *, required: bool = False) -> ListItem | None:
        if ref is None:
            if required:
                raise _RequestFailed(3150, f'There is a missing element: "{label}Ref".')
            return None
        list_id, full_name = _text(ref, "ListID"), _text(ref, "FullName")
        for kind in kinds:
            if list_id:  # ListID wins when both are given
                match = next((i for i in self.lists[kind].values() if i.list_id == list_id), None)
            else:
                match = self.lists[kind].get((full_name or "").casefold())
            if match is not None and match.is_active:
                return match
        shown = list_id or full_name or ""
        raise _RequestFailed(3140, f'There is an invalid reference to QuickBooks {label} "{shown}" in the {txn_label}.')

    # ------------------------------------------------------------------------------ adds

    def _amount(self, node: etree._Element, field_name: str = "Amount") -> Decimal:
        text = _text(node, field_name) or ""
        if not re.fullmatch(r"[+\-]?[0-9]{1,13}(\.[0-9]{2})?", text):
            raise _RequestFailed(3040, f'There was an error when converting the amount "{text}" in the field "{field_name}".')
        try:
            return Decimal(text)
        except InvalidOperation:
            raise _RequestFailed(3040, f'Invalid amount "{text}".') from None

    def _bill_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("BillAdd")
        if add is None:
            raise _RequestFailed(3150, 'There is a missing element: "BillAdd".')
        vendor = self._resolve(add.find("VendorRef"), ["vendor"], "Vendor", "Bill", required=True)
        ap_ref = add.find("APAccountRef")
        if ap_ref is not None:
            ap = self._resolve(ap_ref, ["account"], "Account", "Bill")
            if ap is not None and ap.account_type != "AccountsPayable":
                raise _RequestFailed(3140, f'There is an invalid reference to QuickBooks Account "{ap.full_name}" in the Bill.')
        else:
            ap = next((a for a in self.lists["account"].values()
                       if a.account_type == "AccountsPayable" and a.is_active), None)
            if ap is None:
                raise _RequestFailed(3270, "There is no accounts payable account to post the bill to.")
        lines = []
        for line in add.findall("ExpenseLineAdd"):
            account = self._resolve(line.find("AccountRef"), ["account"], "Account", "Bill", required=True)
            customer = self._resolve(line.find("CustomerRef"), ["customer"], "Customer", "Bill")
            klass = self._resolve(line.find("ClassRef"), ["class"], "Class", "Bill")
            billable = _text(line, "BillableStatus")
            if billable == "Billable" and customer is None:
                raise _RequestFailed(3210, 'The "BillableStatus" field has an invalid value "Billable". '
                                           "QuickBooks error message: A billable expense needs a customer:job.")
            assert account is not None
            lines.append(TxnLine(self._new_id(), "expense", account.full_name, self._amount(line),
                                 _text(line, "Memo") or "", customer.full_name if customer else None,
                                 klass.full_name if klass else None, billable))
        if add.find("ItemLineAdd") is not None or add.find("ItemGroupLineAdd") is not None:
            raise _RequestFailed(1030, "The simulator does not support item lines.")
        if not lines:
            raise _RequestFailed(3180, "There was an error when saving a Bill. QuickBooks error message: "
                                       "Transactions must have at least one line.")
        assert vendor is not None and ap is not None
        txn = Txn("Bill", self._new_id(), str(1700000000 + len(self.transactions)), next(self._txn_numbers),
                  _text(add, "RefNumber") or "", _text(add, "TxnDate") or self.now().date().isoformat(), lines,
                  vendor=vendor.full_name, ap_account=ap.full_name, due_date=_text(add, "DueDate"),
                  memo=_text(add, "Memo") or "", external_guid=_text(add, "ExternalGUID"),
                  request_id=request.get("requestID"), message_set_id=message_set_id, created=self.now())
        if txn.total < 0:
            raise _RequestFailed(3180, "There was an error when saving a Bill. QuickBooks error message: "
                                       "The total of a bill cannot be negative.")
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))

    def _journal_add(self, request: etree._Element, rs: etree._Element, message_set_id: str | None) -> None:
        add = request.find("JournalEntryAdd")
        if add is None:
            raise _RequestFailed(3150, 'There is a missing element: "JournalEntryAdd".')
        lines = []
        for line in add:
            if line.tag not in ("JournalDebitLine", "JournalCreditLine"):
                continue
            account = self._resolve(line.find("AccountRef"), ["account"], "Account", "Journal Entry", required=True)
            entity = self._resolve(line.find("EntityRef"), ["vendor", "customer"], "Entity", "Journal Entry")
            klass = self._resolve(line.find("ClassRef"), ["class"], "Class", "Journal Entry")
            amount = self._amount(line)
            if amount < 0:
                raise _RequestFailed(3210, f'The "Amount" field has an invalid value "{_money(amount)}". QuickBooks '
                                           "error message: Journal entry amounts cannot be negative.")
            assert account is not None
            if account.account_type in ("AccountsPayable", "AccountsReceivable") and entity is None:
                raise _RequestFailed(3180, "There was an error when saving a Journal Entry. QuickBooks error message: "
                                           f"A line posting to {account.full_name} needs a name.")
            side = "debit" if line.tag == "JournalDebitLine" else "credit"
            lines.append(TxnLine(self._new_id(), side, account.full_name, amount, _text(line, "Memo") or "",
                                 entity.full_name if entity else None, klass.full_name if klass else None,
                                 _text(line, "BillableStatus")))
        if not lines:
            raise _RequestFailed(3180, "There was an error when saving a Journal Entry. QuickBooks error message: "
                                       "Transactions must have at least one line.")
        debits = sum((ln.amount for ln in lines if ln.side == "debit"), Decimal("0"))
        credits = sum((ln.amount for ln in lines if ln.side == "credit"), Decimal("0"))
        if debits != credits:
            raise _RequestFailed(3210, f'The "Amount" field has an invalid value "{_money(debits - credits)}". '
                                       "QuickBooks error message: The transaction is not in balance. Make sure the "
                                       "amounts in the debit column equal the amounts in the credit column.")
        txn = Txn("JournalEntry", self._new_id(), str(1700000000 + len(self.transactions)), next(self._txn_numbers),
                  _text(add, "RefNumber") or "", _text(add, "TxnDate") or self.now().date().isoformat(), lines,
                  external_guid=_text(add, "ExternalGUID"), request_id=request.get("requestID"),
                  message_set_id=message_set_id, created=self.now())
        self.transactions.append(txn)
        rs.append(self._txn_ret(txn, include_lines=True))

    def _txn_ret(self, txn: Txn, *, include_lines: bool) -> etree._Element:
        ret = etree.Element("BillRet" if txn.kind == "Bill" else "JournalEntryRet")
        _add(ret, "TxnID", txn.txn_id)
        _add(ret, "TimeCreated", _time(txn.created))
        _add(ret, "TimeModified", _time(txn.created))
        _add(ret, "EditSequence", txn.edit_sequence)
        _add(ret, "TxnNumber", txn.txn_number)
        if txn.kind == "Bill":
            _ref(ret, "VendorRef", self.item("vendor", txn.vendor or ""), txn.vendor)
            _ref(ret, "APAccountRef", self.item("account", txn.ap_account or ""), txn.ap_account)
            _add(ret, "TxnDate", txn.txn_date)
            _add(ret, "DueDate", txn.due_date)
            _add(ret, "AmountDue", _money(txn.total))
            _add(ret, "RefNumber", txn.ref_number or None)
            _add(ret, "Memo", txn.memo or None)
            _add(ret, "IsPaid", "false")
            _add(ret, "ExternalGUID", txn.external_guid)
            if include_lines:
                for line in txn.lines:
                    lr = etree.SubElement(ret, "ExpenseLineRet")
                    _add(lr, "TxnLineID", line.txn_line_id)
                    _ref(lr, "AccountRef", self.item("account", line.account), line.account)
                    _add(lr, "Amount", _money(line.amount))
                    _add(lr, "Memo", line.memo or None)
                    if line.customer:
                        _ref(lr, "CustomerRef", self.item("customer", line.customer), line.customer)
                    if line.klass:
                        _ref(lr, "ClassRef", self.item("class", line.klass), line.klass)
                    _add(lr, "BillableStatus", line.billable_status)
            _add(ret, "OpenAmount", _money(txn.total))
        else:
            _add(ret, "TxnDate", txn.txn_date)
            _add(ret, "RefNumber", txn.ref_number or None)
            _add(ret, "IsAdjustment", "false")
            _add(ret, "ExternalGUID", txn.external_guid)
            if include_lines:
                for line in txn.lines:
                    lr = etree.SubElement(ret, "JournalDebitLine" if line.side == "debit" else "JournalCreditLine")
                    _add(lr, "TxnLineID", line.txn_line_id)
                    _ref(lr, "AccountRef", self.item("account", line.account), line.account)
                    _add(lr, "Amount", _money(line.amount))
                    _add(lr, "Memo", line.memo or None)
                    if line.customer:
                        entity = self.item("vendor", line.customer) or self.item("customer", line.customer)
                        _ref(lr, "EntityRef", entity, line.customer)
                    if line.klass:
                        _ref(lr, "ClassRef", self.item("class", line.klass), line.klass)
                    _add(lr, "BillableStatus", line.billable_status)
        return ret

    # ---------------------------------------------------------------------------- queries

    def _txn_query(self, request: etree._Element, rs: etree._Element, kind: str) -> None:
        candidates = self.find_txns(kind=kind)
        txn_ids = [e.text or "" for e in request.findall("TxnID")]
        refs = [e.text or "" for e in request.findall("RefNumber")]
        exact_refs = [e.text or "" for e in request.findall("RefNumberCaseSensitive")]
        if txn_ids:
            selected = [t for t in candidates if t.txn_id in txn_ids]
        elif refs:
            wanted = {r.casefold() for r in refs}
            selected = [t for t in candidates if t.ref_number.casefold() in wanted]
        elif exact_refs:
            selected = [t for t in candidates if t.ref_number in exact_refs]
        else:
            selected = candidates
            ref_filter = request.find("RefNumberFilter")
            if ref_filter is not None:
                how, text = _text(ref_filter, "MatchCriterion"), (_text(ref_filter, "RefNumber") or "").casefold()
                test = {"StartsWith": str.startswith, "Contains": str.__contains__, "EndsWith": str.endswith}
                selected = [t for t in selected if test.get(how or "StartsWith", str.startswith)(
                    t.ref_number.casefold(), text)]
            entity_filter = request.find("EntityFilter")
            if entity_filter is not None:
                names = {(e.text or "").casefold() for e in entity_filter.findall("FullName")}
                ids = {e.text for e in entity_filter.findall("ListID")}
                selected = [t for t in selected if _entities(self, t) & names or _entity_ids(self, t) & ids]
            dates = request.find("TxnDateRangeFilter")
            if dates is not None:
                low, high = _text(dates, "FromTxnDate") or "0000", _text(dates, "ToTxnDate") or "9999"
                selected = [t for t in selected if low <= t.txn_date <= high]
            max_returned = _text(request, "MaxReturned")
            if max_returned:
                selected = selected[: int(max_returned)]
        if request.get("iterator") in ("Start", "Continue"):
            rs.set("iteratorRemainingCount", "0")
            rs.set("iteratorID", request.get("iteratorID") or "{A1B2C3D4-0000-4000-8000-000000000002}")
        if not selected:
            raise _RequestFailed(1, NO_MATCH)
        include_lines = (_text(request, "IncludeLineItems") or "false") == "true"
        for txn in selected:
            rs.append(self._txn_ret(txn, include_lines=include_lines))


def _entities(sim: QuickBooksSimulator, txn: Txn) -> set[str]:
    names = {(txn.vendor or "").casefold()} | {(ln.customer or "").casefold() for ln in txn.lines}
    return {n for n in names if n}


def _entity_ids(sim: QuickBooksSimulator, txn: Txn) -> set[str | None]:
    ids: set[str | None] = set()
    for name in _entities(sim, txn):
        for kind in ("vendor", "customer"):
            item = sim.lists[kind].get(name)
            if item is not None:
                ids.add(item.list_id)
    return ids


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def _time(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def _serialize(root: etree._Element) -> str:
    return '<?xml version="1.0" ?>\n' + str(etree.tostring(root, encoding="unicode"))


def _with_attributes(response: str, **attributes: str) -> str:
    root = etree.fromstring(response.encode("utf-8"), _PARSER)
    msgs = root.find("QBXMLMsgsRs")
    if msgs is not None:
        for key, value in attributes.items():
            msgs.set(key, value)
    return _serialize(root)

