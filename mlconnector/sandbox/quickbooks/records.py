"""The simulated company's records, its faults and the small XML helpers every part uses."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from lxml import etree

from mlconnector.errors import MlConnectorError

if TYPE_CHECKING:
    from mlconnector.sandbox.quickbooks.base import SimulatorBase

PARSE_ERROR_HRESULT = "0x80040400"
PARSE_ERROR_MESSAGE = "QuickBooks found an error when parsing the provided XML text stream."
NO_MATCH = "A query request did not find a matching object in QuickBooks"
MAX_MESSAGE_SET_ID = 23
SUPPORTED_VERSIONS = ("1.0", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0", "8.0", "9.0", "10.0", "11.0", "12.0", "13.0",
                      "14.0", "15.0", "16.0")

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_pis=False,
                          remove_comments=True, huge_tree=True)

LIST_KINDS = {"account": "Account", "vendor": "Vendor", "class": "Class", "customer": "Customer", "item": "Item"}


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

    kind: str  # Bill | JournalEntry | VendorCredit | Check | CreditCardCharge | CreditCardCredit | BillPaymentCheck
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
    to_be_printed: bool = False
    # A bill payment: the bank account it is drawn on and the (bill TxnID, PaymentAmount) pairs it pays;
    # its payee is ``vendor`` and its A/P account ``ap_account``.
    bank_account: str | None = None
    applied: list[tuple[str, Decimal]] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        """Bill: sum of expense lines. Journal entry: sum of debits. Bill payment: sum of the payments."""
        if self.kind == "BillPaymentCheck":
            return sum((amount for _, amount in self.applied), Decimal("0.00"))
        return sum((ln.amount for ln in self.lines if ln.side in ("expense", "item", "debit")), Decimal("0.00"))


@dataclass
class Status:
    code: int
    message: str

    @property
    def severity(self) -> str:
        if self.code < 500:
            return "Info"
        return "Warn" if self.code < 1000 else "Error"


class RequestFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.status = Status(code, message)


@lru_cache(maxsize=4)
def load_schema(path: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(path))


def version_of(root: etree._Element) -> str | None:
    node = root.getprevious()
    while node is not None:
        if isinstance(node, etree._ProcessingInstruction) and node.target == "qbxml":
            found = re.search(r'version\s*=\s*"([^"]+)"', node.text or "")
            return found.group(1) if found else None
        node = node.getprevious()
    return None


def child_text(parent: etree._Element, path: str) -> str | None:
    node = parent.find(path)
    return None if node is None else (node.text or "")


def add_child(parent: etree._Element, tag: str, text: object | None) -> etree._Element | None:
    if text is None:
        return None
    child = etree.SubElement(parent, tag)
    child.text = str(text)
    return child


def add_ref(parent: etree._Element, tag: str, item: ListItem | None, fallback: str | None = None) -> None:
    if item is None and not fallback:
        return
    ref = etree.SubElement(parent, tag)
    if item is not None:
        add_child(ref, "ListID", item.list_id)
        add_child(ref, "FullName", item.full_name)
    else:
        add_child(ref, "FullName", fallback)


def money_text(value: Decimal) -> str:
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


def entities(sim: SimulatorBase, txn: Txn) -> set[str]:
    names = {(txn.vendor or "").casefold()} | {(ln.customer or "").casefold() for ln in txn.lines}
    return {n for n in names if n}


def entity_ids(sim: SimulatorBase, txn: Txn) -> set[str | None]:
    ids: set[str | None] = set()
    for name in entities(sim, txn):
        for kind in ("vendor", "customer"):
            item = sim.lists[kind].get(name)
            if item is not None:
                ids.add(item.list_id)
    return ids


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def qb_time(moment: dt.datetime) -> str:
    return moment.replace(microsecond=0).isoformat()


def serialize(root: etree._Element) -> str:
    return '<?xml version="1.0" ?>\n' + str(etree.tostring(root, encoding="unicode"))


def with_attributes(response: str, **attributes: str) -> str:
    root = etree.fromstring(response.encode("utf-8"), PARSER)
    msgs = root.find("QBXMLMsgsRs")
    if msgs is not None:
        for key, value in attributes.items():
            msgs.set(key, value)
    return serialize(root)
