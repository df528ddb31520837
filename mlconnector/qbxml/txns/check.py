"""Checks (``CheckAddRq``): reimbursable expenses paid to the employee's vendor from a bank account.

A check to be printed carries no RefNumber (QuickBooks numbers it when it prints); ml-connector then
finds it again by payee, date and its ExternalGUID (``recovery_query``).
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.models import PlannedPosting, PostingMode
from mlconnector.qbxml import text
from mlconnector.qbxml.elements import (
    external_guid,
    purchase_lines,
    ref,
    ref_number,
    request,
    sub,
)
from mlconnector.qbxml.txns.kind import TxnKind
from mlconnector.qbxml.xml import check_version


def check_add(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """A ``CheckAddRq``: bank account, payee, RefNumber (or to be printed), date, memo, expense lines.

    Raises:
        QbxmlError: not a check, an unsupported version, a name too long, or an invalid amount.
    """
    check_version(version)
    if posting.mode is not PostingMode.CHECK:
        raise QbxmlError(f"posting {posting.report_id}/{posting.part} is a {posting.mode}, not a check")
    rq = request("CheckAddRq", request_id)
    check = sub(rq, "CheckAdd")
    ref(check, "AccountRef", posting.account, text.MAX_ACCOUNT_NAME, "bank account")
    ref(check, "PayeeEntityRef", posting.vendor, text.MAX_VENDOR_NAME, "payee")
    if not posting.to_be_printed:
        sub(check, "RefNumber", ref_number(posting.ref_number, text.MAX_CHECK_REF_NUMBER))
    sub(check, "TxnDate", posting.txn_date.isoformat())
    if posting.memo:
        sub(check, "Memo", text.memo(posting.memo))
    if posting.to_be_printed:
        sub(check, "IsToBePrinted", "true")
    sub(check, "ExternalGUID", external_guid(posting))
    purchase_lines(check, posting.lines)
    return rq


def check_query(posting: PlannedPosting, request_id: str, version: str) -> etree._Element:
    """Find a check again: by RefNumber, or (to be printed, no number) by payee and date."""
    check_version(version)
    rq = request("CheckQueryRq", request_id)
    if not posting.to_be_printed:
        sub(rq, "RefNumber", posting.ref_number)
    else:
        # Schema order: the date filter, then the entity filter.
        dates = sub(rq, "TxnDateRangeFilter")
        day: dt.date = posting.txn_date
        sub(dates, "FromTxnDate", day.isoformat())
        sub(dates, "ToTxnDate", day.isoformat())
        entity = sub(rq, "EntityFilter")
        sub(entity, "FullName", posting.vendor)
    sub(rq, "IncludeLineItems", "false")
    return rq


KIND = TxnKind(PostingMode.CHECK, "Check", check_add, check_query)
