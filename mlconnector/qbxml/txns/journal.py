"""Journal entries (``JournalEntryAddRq``): balanced debit and credit lines, memos on the lines."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import Line, PlannedPosting, PostingMode, Side
from mlconnector.qbxml import text
from mlconnector.qbxml.elements import external_guid, ref, ref_number, request, sub
from mlconnector.qbxml.txns.kind import TxnKind
from mlconnector.qbxml.xml import check_version


def journal_entry_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``JournalEntryAddRq`` for a journal posting; refuses one that does not balance.

    No header Memo: QuickBooks Desktop ignores it (QBXML.md §6), so memos go on the lines.

    Raises:
        QbxmlError: not a journal entry, unbalanced, a negative amount, a name too long, or an
            unsupported version.
    """
    check_version(version)
    if posting.mode is not PostingMode.JOURNAL:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a journal entry")
    if not posting.lines:
        raise QbxmlError(f"journal entry {posting.ref_number} has no lines")
    debits = sum((ln.amount for ln in posting.lines if ln.side is Side.DEBIT), start=Decimal(0))
    credits = sum((ln.amount for ln in posting.lines if ln.side is Side.CREDIT), start=Decimal(0))
    if debits != credits:
        raise QbxmlError(f"journal entry {posting.ref_number} does not balance: debits {debits}, credits {credits}")
    rq = request("JournalEntryAddRq", request_id)
    je = sub(rq, "JournalEntryAdd")
    sub(je, "TxnDate", posting.txn_date.isoformat())
    sub(je, "RefNumber", ref_number(posting.ref_number, text.MAX_JOURNAL_REF_NUMBER))
    sub(je, "ExternalGUID", external_guid(posting))
    for line in posting.lines:
        _journal_line(je, line)
    return rq


def _journal_line(je: etree._Element, line: Line) -> None:
    if line.amount < 0:
        raise QbxmlError(f"journal line {line.account!r} has a negative amount {line.amount}")
    el = sub(je, "JournalDebitLine" if line.side is Side.DEBIT else "JournalCreditLine")
    ref(el, "AccountRef", line.account, text.MAX_ACCOUNT_NAME, "account")
    sub(el, "Amount", text.format_amount(line.amount))
    if line.memo:
        sub(el, "Memo", text.memo(line.memo))
    entity = line.entity or line.customer
    if entity:
        ref(el, "EntityRef", entity, text.MAX_CUSTOMER_NAME, "name")
    if line.klass:
        ref(el, "ClassRef", line.klass, text.MAX_CLASS_NAME, "class")
    if line.customer:
        sub(el, "BillableStatus", "Billable" if line.billable else "NotBillable")


KIND = TxnKind(PostingMode.JOURNAL, "JournalEntry", journal_entry_add)
