"""Checks, vendor credits, debit-card checks and company-card bills: what is planned and the qbXML sent."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from mlconnector.mapping.rules import Mappings
from mlconnector.models import (
    ListKind,
    NonReimbursablePolicy,
    Plan,
    PostingMode,
    ReimbursableMode,
    Report,
)
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.plan.check import check_ref_number
from mlconnector.qbxml.build import (
    build_message,
    list_query,
    txn_query_by_ref,
    write_request,
)
from mlconnector.qbxml.txns import txn_kind

from .factories import expense, report
from .qbxml_support import assert_valid

D = Decimal
DAY = dt.date(2026, 4, 1)
ANN = Mappings.compile([("employee", "ann@example.com", "Ann Smith"), ("category", "Travel", "Travel Expense"),
                        ("class", "Sales", "Sales"), ("customer", "Acme:Project X", "Acme Corp:Project X")])


def _plan(r: Report, **settings: object) -> Plan:
    values: dict[str, object] = {"check_account": "Checking", "card_account": "Corporate Card",
                                 "card_bill_vendor": "Card Issuer Bank"}
    values.update(settings)
    return plan_report(r, ANN, PlanSettings(**values), posting_day=DAY)  # type: ignore[arg-type]


def test_check_mode_writes_one_numbered_check_per_report_from_the_check_account() -> None:
    (check,) = _plan(report("R00X9oNOn2MO", expense(1, "40.00"), expense(2, "-5.00")),
                     mode=ReimbursableMode.CHECK).postings
    assert (check.mode, check.account, check.vendor, check.to_be_printed) == (
        PostingMode.CHECK, "Checking", "Ann Smith", False)
    assert check.ref_number == check_ref_number("R00X9oNOn2MO") and len(check.ref_number) <= 11
    assert [ln.amount for ln in check.lines] == [D("40.00"), D("-5.00")] and check.total == D("35.00")


def test_a_check_to_print_has_no_number_and_a_negative_check_is_blocked_with_the_fix() -> None:
    (check,) = _plan(report("R1"), mode=ReimbursableMode.CHECK, check_to_print=True).postings
    assert (check.ref_number, check.to_be_printed) == ("", True)
    (block,) = _plan(report("R2", expense(1, "-9.00")), mode=ReimbursableMode.CHECK).blocked
    assert "a check cannot be negative" in block.reason and "vendor credit" in block.fix


def test_check_ref_numbers_fit_in_11_characters_and_stay_distinct() -> None:
    assert check_ref_number("R1") == "R1"
    refs = {check_ref_number("R00X9oNOn2MO", part, 3) for part in (1, 2, 3)}
    assert len(refs) == 3 and all(len(r) <= 11 for r in refs)
    assert check_ref_number("R00X9oNOn2MO") == "VBXYNUYYWGU"  # 12 characters: a digest, the same every time


def test_a_negative_bill_mode_report_becomes_a_vendor_credit_with_the_signs_flipped() -> None:
    r = report("R1", expense(1, "5.00"), expense(2, "-20.00"))
    (credit,) = _plan(r).postings
    assert (credit.mode, credit.vendor, credit.account, credit.ref_number) == (
        PostingMode.VENDOR_CREDIT, "Ann Smith", "Accounts Payable", "R1")
    assert [ln.amount for ln in credit.lines] == [D("-5.00"), D("20.00")]
    assert credit.total == D("15.00") and credit.expense_total == r.total == D("-15.00")
    (bill,) = _plan(report("R2", expense(1, "30.00"), expense(2, "-20.00"))).postings
    assert bill.mode is PostingMode.BILL  # mixed signs with a positive total stay a bill


def test_debit_card_expenses_are_one_check_from_the_card_account_and_card_bills_go_to_the_issuer() -> None:
    r = report("R1", expense(1, "12.00", reimbursable=False), expense(2, "8.00", reimbursable=False))
    (check,) = _plan(r, non_reimbursable=NonReimbursablePolicy.DEBIT_CARD).postings
    assert (check.mode, check.account, check.vendor, check.to_be_printed, check.total) == (
        PostingMode.CHECK, "Corporate Card", "Ann Smith", False, D("20.00"))
    (bill,) = _plan(r, non_reimbursable=NonReimbursablePolicy.BILL).postings
    assert (bill.mode, bill.vendor, bill.account, bill.total) == (
        PostingMode.BILL, "Card Issuer Bank", "Accounts Payable", D("20.00"))


@pytest.mark.parametrize("version", ["13.0", "16.0"])
def test_the_new_requests_and_their_recovery_queries_are_schema_valid(reference_dir: Path, version: str) -> None:
    postings = [
        *_plan(report("R1", expense(1, "40.00", billable=True)), mode=ReimbursableMode.CHECK).postings,
        *_plan(report("R2"), mode=ReimbursableMode.CHECK, check_to_print=True).postings,
        *_plan(report("R3", expense(1, "5.00"), expense(2, "-20.00"))).postings,
    ]
    assert [p.mode for p in postings] == [PostingMode.CHECK, PostingMode.CHECK, PostingMode.VENDOR_CREDIT]
    requests = [write_request(p, f"p{n}", version) for n, p in enumerate(postings)]
    for n, p in enumerate(postings):
        find = txn_kind(p.mode).recovery_query
        requests.append(find(p, f"r{n}", version) if find else txn_query_by_ref(p.mode, [p.ref_number], f"r{n}",
                                                                                  version))
    xml = build_message(requests, version=version)
    assert_valid(reference_dir, xml, version)
    root = etree.fromstring(xml)
    printed = root.find(".//CheckAddRq[@requestID='p1']/CheckAdd")
    assert printed is not None and printed.find("RefNumber") is None and printed.findtext("IsToBePrinted") == "true"
    assert root.find(".//CheckQueryRq[@requestID='r1']/EntityFilter/FullName") is not None


def test_a_posting_of_another_kind_is_refused_by_each_builder() -> None:
    (credit,) = _plan(report("R3", expense(1, "-20.00"))).postings
    with pytest.raises(Exception, match="not a check"):
        txn_kind(PostingMode.CHECK).add(credit, "p1", "13.0")
    with pytest.raises(Exception, match="not a vendor credit"):
        txn_kind(PostingMode.VENDOR_CREDIT).add(dataclasses.replace(credit, mode=PostingMode.BILL), "p1", "13.0")


def test_grouped_journal_lines_sum_per_account_class_and_customer_and_name_the_expenses() -> None:
    r = report("R1", expense(1, "10.00"), expense(2, "5.00"), expense(3, "-2.00"),
               expense(4, "7.00", tags=("Sales",)))
    (je,) = _plan(r, mode=ReimbursableMode.JOURNAL, journal_lines="grouped").postings
    debits = [(ln.account, ln.klass, ln.customer, ln.amount, ln.memo) for ln in je.lines if ln.expense_id]
    assert debits == [
        ("Travel Expense", "Sales", "Acme Corp:Project X", D("13.00"), "R1: 3 expense(s): T0001, T0002, T0003"),
        ("Travel Expense", "Sales", None, D("7.00"), "R1: 1 expense(s): T0004"),
    ]
    assert je.expense_total == r.total == D("20.00") and je.total == D("20.00")
    (per_expense,) = _plan(r, mode=ReimbursableMode.JOURNAL).postings
    assert sum(1 for ln in per_expense.lines if ln.expense_id) == 4


ITEMS = Mappings.compile([("employee", "ann@example.com", "Ann Smith"), ("item", "Travel", "Consulting Travel"),
                          ("category", "Meals", "Meals and Entertainment")])


def test_a_category_mapped_to_an_item_becomes_an_item_line_and_journal_entries_refuse_it() -> None:
    r = report("R1", expense(1, "40.00"), expense(2, "10.00", category="Meals"))
    (bill,) = plan_report(r, ITEMS, PlanSettings(), posting_day=DAY).postings
    assert [(ln.item, ln.account, ln.amount) for ln in bill.lines] == [
        ("Consulting Travel", "", D("40.00")), (None, "Meals and Entertainment", D("10.00"))]
    refs = bill.references()
    assert refs[ListKind.ITEM] == {"Consulting Travel"} and "" not in refs[ListKind.ACCOUNT]
    (block,) = plan_report(r, ITEMS, PlanSettings(mode=ReimbursableMode.JOURNAL), posting_day=DAY).blocked
    assert "cannot carry items" in block.reason and 'map unset item "Travel"' in block.fix


@pytest.mark.parametrize("version", ["13.0", "16.0"])
def test_item_lines_follow_expense_lines_in_every_purchase_and_the_item_query_is_valid(
    reference_dir: Path, version: str
) -> None:
    r = report("R1", expense(1, "40.00"), expense(2, "10.00", category="Meals"))
    settings = [PlanSettings(), PlanSettings(mode=ReimbursableMode.CHECK, check_account="Checking")]
    postings = [p for s in settings for p in plan_report(r, ITEMS, s, posting_day=DAY).postings]
    negative = report("R2", expense(1, "-40.00"), expense(2, "10.00", category="Meals"))
    postings += plan_report(negative, ITEMS, PlanSettings(), posting_day=DAY).postings
    assert [p.mode for p in postings] == [PostingMode.BILL, PostingMode.CHECK, PostingMode.VENDOR_CREDIT]
    requests = [write_request(p, f"p{n}", version) for n, p in enumerate(postings)]
    requests.append(list_query(ListKind.ITEM, ["Consulting Travel"], "i1", version))
    xml = build_message(requests, version=version)
    assert_valid(reference_dir, xml, version)
    add = etree.fromstring(xml).find(".//BillAdd")
    assert add is not None and [c.tag for c in add][-2:] == ["ExpenseLineAdd", "ItemLineAdd"]


def test_map_check_resolves_a_category_mapped_to_an_item_as_that_item() -> None:
    used = ITEMS.names_used(report("R1", expense(1, "40.00"), expense(2, "10.00", category="Meals")))
    assert [(r.kind.value, r.source, r.target) for r in used if r.source in ("Travel", "Meals")] == [
        ("item", "Travel", "Consulting Travel"), ("category", "Meals", "Meals and Entertainment")]
