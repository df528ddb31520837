from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from mlconnector.errors import QbxmlError
from mlconnector.mapping.rules import Mappings
from mlconnector.models import Line, ListKind, PlannedPosting, PostingMode, Side
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.qbxml.batch import BatchItem, build_batch, pack, take_batch
from mlconnector.qbxml.build import (
    bill_add,
    build_message,
    external_guid,
    journal_entry_add,
    list_query,
    reference_queries,
    txn_query_by_ref,
    write_request,
)
from mlconnector.qbxml.text import clean_text, format_amount, memo, truncate
from mlconnector.qbxml.xml import choose_version

from . import factories
from .factories import bill
from .qbxml_support import assert_valid

GOLDEN = Path(__file__).parent / "golden"
VERSIONS = ("13.0", "16.0")


def journal(report_id: str = "R00002") -> PlannedPosting:
    return PlannedPosting(
        report_id=report_id, part=1, part_count=1, mode=PostingMode.JOURNAL, ref_number="R00002",
        txn_date=dt.date(2026, 3, 30), vendor="Ann Smith", account="Accounts Payable",
        lines=(
            Line(account="Meals", amount=Decimal("125.40"), memo="R00002: Bistro — client dinner", klass="Sales",
                 customer="Acme:Project X", billable=True, expense_id="T1"),
            Line(account="Office Supplies", amount=Decimal("20.00"), memo="R00002: Paper", expense_id="T2"),
            Line(account="Travel", amount=Decimal("5.00"), memo="R00002: refund", side=Side.CREDIT, expense_id="T3"),
            Line(account="Accounts Payable", amount=Decimal("140.40"), memo="Expensify report R00002: March",
                 side=Side.CREDIT, entity="Ann Smith"),
        ),
    )


def _golden(name: str, xml: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):  # regenerate deliberately, then review the diff
        path.write_bytes(xml)
    assert path.exists(), f"{path} is missing (run with UPDATE_GOLDEN=1 once and review it)"
    assert xml.decode() == path.read_text(encoding="utf-8")


def planned_bill() -> PlannedPosting:
    """A bill as the planner makes it: header memo, merchant — comment memos, class, customer, billable."""
    report = factories.report(
        "R00001",
        factories.expense(1, "412.30", merchant="United", comment="Flight SFO–JFK “economy”", billable=True),
        factories.expense(2, "-58.00", merchant="Taxi & Co <refund>", category="Travel:Taxi", tags=()),
        name="March travel",
    )
    mappings = Mappings.compile([("employee", "ann@example.com", "Ann Smith"), ("category", "Travel", "Travel:Airfare")])
    plan = plan_report(report, mappings, PlanSettings(), posting_day=dt.date(2026, 4, 1))
    assert not plan.blocked
    return plan.postings[0]


def test_a_bill_matches_its_golden_file_and_validates(reference_dir: Path) -> None:
    xml = build_message([bill_add(planned_bill(), "1", "13.0")], version="13.0")
    _golden("bill_13.0.xml", xml)
    for version in VERSIONS:
        assert_valid(reference_dir, build_message([bill_add(planned_bill(), "1", version)], version=version), version)


def test_a_journal_entry_matches_its_golden_file_and_validates(reference_dir: Path) -> None:
    xml = build_message([journal_entry_add(journal(), "2", "13.0")], version="13.0")
    _golden("journal_entry_13.0.xml", xml)
    for version in VERSIONS:
        assert_valid(reference_dir, build_message([journal_entry_add(journal(), "2", version)], version=version), version)


def test_the_message_carries_both_headers_and_the_requested_version() -> None:
    xml = build_message([], version="16.0", new_message_set_id="mlc-1", old_message_set_id="mlc-0")
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<?qbxml version="16.0"?>\n<QBXML>')
    msgs = etree.fromstring(xml).find("QBXMLMsgsRq")
    assert msgs.attrib == {"onError": "stopOnError", "newMessageSetID": "mlc-1", "oldMessageSetID": "mlc-0"}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"version": "14.0"}, "not supported"),
        ({"version": "13.0", "on_error": "rollbackOnError"}, "onError"),
        ({"version": "13.0", "new_message_set_id": "x" * 24}, "newMessageSetID"),
    ],
)
def test_bad_envelope_settings_are_refused(kwargs: dict[str, str], problem: str) -> None:
    with pytest.raises(QbxmlError, match=problem):
        build_message([], **kwargs)


def test_queries_for_names_and_refnumbers_validate_in_both_versions(reference_dir: Path) -> None:
    for version in VERSIONS:
        requests = [
            list_query(ListKind.ACCOUNT, ["Travel:Airfare", "Meals & <Ent>"], "a", version),
            list_query(ListKind.VENDOR, ["Ann Smith"], "v", version),
            list_query(ListKind.CLASS, ["Sales"], "c", version),
            list_query(ListKind.CUSTOMER, ["Acme:Project X"], "u", version),
            list_query(ListKind.VENDOR, None, "va", version, iterator="Start", max_returned=100),
            list_query(ListKind.ACCOUNT, None, "aa", version),
            txn_query_by_ref(PostingMode.BILL, ["R00001", "R00001-2"], "b", version),
            txn_query_by_ref(PostingMode.JOURNAL, ["K3J5QZ7M2PA"], "j", version, include_line_items=True),
        ]
        assert_valid(reference_dir, build_message(requests, version=version, on_error="continueOnError"), version)


def test_the_status_check_message_validates(reference_dir: Path) -> None:
    xml = build_message([], version="13.0", new_message_set_id="mlc-42", old_message_set_id="mlc-42")
    assert_valid(reference_dir, xml, "13.0")


def test_accounts_and_classes_have_no_iterator() -> None:
    with pytest.raises(QbxmlError, match="no iterator"):
        list_query(ListKind.ACCOUNT, None, "1", "13.0", iterator="Start")


def test_elements_follow_schema_order_in_a_bill_line() -> None:
    rq = bill_add(PlannedPosting(**{**bill().__dict__, "lines": (
        Line(account="Meals", amount=Decimal("3"), memo="m", customer="Acme", klass="Sales", billable=True),)}),
        "1", "13.0")
    line = rq.find("BillAdd/ExpenseLineAdd")
    assert [c.tag for c in line] == ["AccountRef", "Amount", "Memo", "CustomerRef", "ClassRef", "BillableStatus"]
    with_memo = bill_add(PlannedPosting(**{**bill().__dict__, "memo": "Expensify report R00001"}), "1", "13.0")
    assert [c.tag for c in with_memo.find("BillAdd")] == [
        "VendorRef", "APAccountRef", "TxnDate", "RefNumber", "Memo", "ExternalGUID", "ExpenseLineAdd", "ExpenseLineAdd"
    ]


def test_an_unbalanced_or_negative_journal_entry_is_refused() -> None:
    je = journal()
    unbalanced = PlannedPosting(**{**je.__dict__, "lines": je.lines[:-1]})
    with pytest.raises(QbxmlError, match="does not balance"):
        journal_entry_add(unbalanced, "1", "13.0")
    negative = PlannedPosting(**{**je.__dict__, "lines": (
        Line(account="A", amount=Decimal("-1.00")), Line(account="B", amount=Decimal("-1.00"), side=Side.CREDIT))})
    with pytest.raises(QbxmlError, match="negative"):
        journal_entry_add(negative, "1", "13.0")


def test_names_are_checked_never_rewritten() -> None:
    long_vendor = PlannedPosting(**{**bill().__dict__, "vendor": "V" * 42})
    with pytest.raises(QbxmlError, match="longer than 41"):
        bill_add(long_vendor, "1", "13.0")
    control = PlannedPosting(**{**bill().__dict__, "vendor": "Ann\x07"})
    with pytest.raises(QbxmlError, match="cannot store"):
        bill_add(control, "1", "13.0")


@pytest.mark.parametrize("request_id", ["x" * 51, "", "a\x00b"])
def test_request_ids_must_be_1_to_50_plain_characters(request_id: str) -> None:
    with pytest.raises(QbxmlError, match="requestID"):
        bill_add(bill(), request_id, "13.0")


def test_the_external_guid_is_stable_per_report_and_part() -> None:
    assert external_guid(bill("R1")) == "{A648BEDB-FDCC-534A-B7B1-E6B3F82B764C}"  # uuid5 of ("R1", part 1)
    assert external_guid(bill("R1", part=1, part_count=2)) != external_guid(bill("R1", part=2, part_count=2))
    assert external_guid(bill("R1")).startswith("{") and len(external_guid(bill("R1"))) == 38


@pytest.mark.parametrize(
    ("amount", "text"),
    [("412.3", "412.30"), ("10", "10.00"), ("-58", "-58.00"), ("-0.00", "0.00"), ("0.005", "0.01"),
     ("1234567890123.45", "1234567890123.45")],
)
def test_amounts_have_exactly_two_decimals(amount: str, text: str) -> None:
    assert format_amount(Decimal(amount)) == text


def test_amounts_beyond_13_digits_are_refused() -> None:
    with pytest.raises(QbxmlError):
        format_amount(Decimal("12345678901234.00"))


def test_text_is_cleaned_of_what_quickbooks_rejects() -> None:
    assert clean_text("“Smart” ‘quotes’ — dash – en\x00\x1f\u200b 😀 Café\tZürich") == "'Smart' 'quotes' - dash - en Café Zürich"
    assert clean_text('a "b" | c \\ d') == "a 'b' / c / d"


def test_truncation_is_deterministic_and_marked() -> None:
    text = "x" * 5000
    assert memo(text) == "x" * 4092 + "..."
    assert len(memo(text)) == 4095 and memo(text).endswith("...")
    assert truncate("short", 10) == "short"


def _item(n: int, lines: int) -> BatchItem:
    posting = PlannedPosting(**{**bill(f"R{n}").__dict__, "lines": tuple(
        Line(account="Travel", amount=Decimal("1.00")) for _ in range(lines))})
    return BatchItem(str(n), posting)


def test_batches_fill_up_to_the_line_budget_in_order() -> None:
    items = [_item(1, 200), _item(2, 200), _item(3, 200), _item(4, 50)]
    groups = pack(items, 500)
    assert [[i.request_id for i in g] for g in groups] == [["1", "2"], ["3", "4"]]


def test_a_posting_larger_than_the_budget_goes_alone() -> None:
    items = [_item(1, 600), _item(2, 10)]
    taken, rest = take_batch(items, 500)
    assert [i.request_id for i in taken] == ["1"] and [i.request_id for i in rest] == ["2"]


def test_a_batch_message_holds_one_add_request_per_posting_and_validates(reference_dir: Path) -> None:
    items = [BatchItem("7", bill("R7")), BatchItem("8", journal("R8")), _item(9, 3)]
    batch = build_batch(items, version="13.0", max_lines=6, new_message_set_id="mlc-0001")
    assert batch.request_ids == ("7", "8") and batch.line_count == 6
    msgs = etree.fromstring(batch.xml).find("QBXMLMsgsRq")
    assert msgs.get("onError") == "continueOnError"
    assert [(rq.tag, rq.get("requestID")) for rq in msgs] == [("BillAddRq", "7"), ("JournalEntryAddRq", "8")]
    assert_valid(reference_dir, batch.xml, "13.0")


def test_write_request_dispatches_on_the_mode() -> None:
    assert write_request(bill(), "1", "13.0").tag == "BillAddRq"
    assert write_request(journal(), "1", "13.0").tag == "JournalEntryAddRq"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=6000), st.integers(4, 4095))
def test_any_text_becomes_a_memo_lxml_accepts_within_the_limit(value: str, limit: int) -> None:
    cleaned = memo(value, limit)
    assert len(cleaned) <= limit and cleaned == memo(value, limit)
    etree.Element("Memo").text = cleaned  # lxml raises ValueError for characters XML cannot carry
    assert all(ord(c) <= 0xFFFF for c in cleaned)


@pytest.mark.parametrize(("major", "minor", "version"), [(13, 0, "13.0"), (14, 0, "13.0"), (16, 0, "16.0"),
                                                        (17, 0, "16.0"), (12, 0, None)])
def test_the_highest_supported_version_not_above_the_web_connectors_is_chosen(
    major: int, minor: int, version: str | None
) -> None:
    assert choose_version(major, minor) == version


def test_reference_queries_ask_for_every_name_the_postings_use(reference_dir: Path) -> None:
    requests = reference_queries([bill("R1"), journal("R2")], "13.0")
    asked = {rq.get("requestID"): sorted(el.text for el in rq.findall("FullName")) for rq in requests}
    assert asked == {
        "ref-account": ["Accounts Payable", "Meals", "Office Supplies", "Travel"],
        "ref-vendor": ["Ann Smith"],
        "ref-class": ["Sales"],
        "ref-customer": ["Acme:Project X"],
    }
    assert_valid(reference_dir, build_message(requests, version="13.0"), "13.0")
