"""Company-card charges and credits (``non_reimbursable = "credit_card"``): planning, mappings, qbXML, config."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlconnector.config import parse_config
from mlconnector.errors import ConfigError, QbxmlError
from mlconnector.mapping.rules import How, MappingKind, Mappings, QbLists, QbRecord
from mlconnector.models import (
    Expense,
    ListKind,
    NonReimbursablePolicy,
    PlannedPosting,
    PostingMode,
    Report,
    Side,
)
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.plan.credit_card import card_ref_number
from mlconnector.qbxml.build import build_message, txn_query_by_ref, write_request
from mlconnector.qbxml.parse import parse_response
from mlconnector.sandbox.quickbooks import QuickBooksSimulator

from .qbxml_support import assert_valid

D = Decimal
DAY = dt.date(2026, 4, 1)
VERSIONS = ("13.0", "16.0")
SETTINGS = PlanSettings(non_reimbursable=NonReimbursablePolicy.CREDIT_CARD, card_account="Corporate Card")


def _card(n: int, amount: str, merchant: str = "Delta Air Lines", card: str = "4242", **kw: Any) -> Expense:
    values: dict[str, Any] = {
        "transaction_id": f"T{n}", "date": dt.date(2026, 3, n), "merchant": merchant, "amount": D(amount),
        "category": "Travel Expense", "reimbursable": False, "card": card,
    }
    values.update(kw)
    return Expense(**values)


def _report(*expenses: Expense, report_id: str = "R00Card1") -> Report:
    return Report(
        report_id=report_id, name="March cards", submitter_email="ann@example.com", status="Approved",
        currency="USD", total=sum((e.amount for e in expenses), D("0.00")), expenses=expenses,
    )


def _lists(*vendors: str, accounts: tuple[str, ...] = ("Corporate Card", "Amex", "Travel Expense")) -> QbLists:
    records = [QbRecord(ListKind.VENDOR, v) for v in vendors] + [QbRecord(ListKind.ACCOUNT, a) for a in accounts]
    return QbLists.of(records, cached=[ListKind.VENDOR, ListKind.ACCOUNT])


def _mappings(
    rows: tuple[tuple[str, str, str], ...] = (), vendors: tuple[str, ...] = ("Credit Card Misc.",)
) -> Mappings:
    return Mappings.compile(rows, _lists(*vendors))


def _plan(report: Report, mappings: Mappings, settings: PlanSettings = SETTINGS) -> list[PlannedPosting]:
    plan = plan_report(report, mappings, settings, posting_day=DAY)
    assert not plan.blocked, plan.blocked
    return list(plan.postings)


# ---------------------------------------------------------------------------------------------- planning


def test_a_purchase_is_a_charge_a_refund_a_credit_of_the_positive_amount_and_zero_is_left_out() -> None:
    report = _report(_card(1, "412.30"), _card(2, "-20.00"), _card(3, "0.00"))
    postings = _plan(report, _mappings())
    assert [(p.mode, p.total, p.expense_total) for p in postings] == [
        (PostingMode.CREDIT_CARD_CHARGE, D("412.30"), D("412.30")),
        (PostingMode.CREDIT_CARD_CREDIT, D("20.00"), D("-20.00")),
    ]
    assert all(ln.amount > 0 for p in postings for ln in p.lines)
    assert [ln.side for p in postings for ln in p.lines] == [Side.DEBIT, Side.CREDIT]
    plan = plan_report(report, _mappings(), SETTINGS, posting_day=DAY)
    assert [n.expense_id for n in plan.notes] == ["T3"]


def test_each_card_expense_is_its_own_part_with_its_own_date_ref_number_and_memo() -> None:
    report = _report(_card(1, "10.00"), _card(2, "20.00"), _card(3, "-5.00"))
    postings = _plan(report, _mappings())
    assert [(p.part, p.part_count) for p in postings] == [(1, 3), (2, 3), (3, 3)]
    assert [p.txn_date for p in postings] == [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    refs = [p.ref_number for p in postings]
    assert len(set(refs)) == 3 and all(len(r) <= 11 for r in refs)
    assert refs == [card_ref_number("R00Card1", f"T{n}") for n in (1, 2, 3)]
    assert [p.memo for p in postings] == [f"Expensify report R00Card1, expense T{n}" for n in (1, 2, 3)]


def test_the_ref_number_is_deterministic_short_and_differs_per_report_and_expense() -> None:
    long_id = "R" + "9" * 40
    assert card_ref_number(long_id, "T1") == card_ref_number(long_id, "T1")
    assert len(card_ref_number(long_id, "T1")) == 11
    assert card_ref_number(long_id, "T1") != card_ref_number(long_id, "T2")
    assert card_ref_number("R1", "T1") != card_ref_number("R2", "T1")


def test_reimbursable_expenses_still_make_a_bill_beside_the_card_charges() -> None:
    own = Expense("T9", dt.date(2026, 3, 9), "Cab", D("30.00"), "Travel Expense")
    report = _report(own, _card(1, "100.00"))
    mappings = Mappings.compile([("employee", "ann@example.com", "Ann Smith")],
                                _lists("Ann Smith", "Credit Card Misc."))
    postings = _plan(report, mappings)
    assert [(p.mode, p.part, p.part_count) for p in postings] == [
        (PostingMode.BILL, 1, 2), (PostingMode.CREDIT_CARD_CHARGE, 2, 2)]
    assert sum((p.expense_total for p in postings), D("0")) == report.total


def test_the_payee_is_the_merchant_mapping_then_the_same_named_vendor_then_the_fallback() -> None:
    report = _report(_card(1, "1.00", " delta air lines "), _card(2, "2.00", "Uber"), _card(3, "3.00", "Corner Cafe"))
    mappings = _mappings((("merchant", "UBER", "Uber Technologies"),),
                         vendors=("Delta Air Lines", "Uber Technologies", "Credit Card Misc."))
    assert [p.vendor for p in _plan(report, mappings)] == ["Delta Air Lines", "Uber Technologies", "Credit Card Misc."]
    assert mappings.payee("Corner Cafe", "Credit Card Misc.").how is How.DEFAULT
    assert mappings.payee(" delta air lines ", "x").how is How.SAME_NAME


def test_an_unmapped_merchant_waits_for_the_vendor_list_and_a_missing_fallback_blocks() -> None:
    report = _report(_card(1, "1.00", "Corner Cafe"))
    waiting = plan_report(report, Mappings(), SETTINGS, posting_day=DAY)
    assert [b.field for b in waiting.blocked] == ["merchant"]
    assert "not been fetched" in waiting.blocked[0].reason
    missing = plan_report(report, _mappings(vendors=()), SETTINGS, posting_day=DAY)
    assert [b.field for b in missing.blocked] == ["merchant"]
    assert "card_vendor_fallback" in missing.blocked[0].reason and "map set merchant" in missing.blocked[0].fix


def test_the_card_account_is_the_card_mapping_else_card_account() -> None:
    report = _report(_card(1, "1.00", card="1111"), _card(2, "2.00", card="9999"), _card(3, "3.00", card=""))
    mappings = _mappings((("card", "1111", "Amex"),))
    assert [p.account for p in _plan(report, mappings)] == ["Amex", "Corporate Card", "Corporate Card"]


def test_a_card_mapped_to_a_missing_account_blocks_with_the_fix() -> None:
    report = _report(_card(1, "1.00", card="1111"))
    plan = plan_report(report, _mappings((("card", "1111", "Gone Card"),)), SETTINGS, posting_day=DAY)
    assert [(b.field, b.expense_id) for b in plan.blocked] == [("card", "T1")]
    assert "map set card 1111" in plan.blocked[0].fix


def test_references_cover_the_card_account_and_the_payee() -> None:
    posting = _plan(_report(_card(1, "5.00", "Delta Air Lines")), _mappings(vendors=("Delta Air Lines",)))[0]
    refs = posting.references()
    assert {"Corporate Card", "Travel Expense"} <= refs[ListKind.ACCOUNT]
    assert refs[ListKind.VENDOR] == frozenset({"Delta Air Lines"})


def test_other_policies_are_unchanged_by_the_card_field() -> None:
    report = _report(_card(1, "5.00"))
    journal = PlanSettings(non_reimbursable=NonReimbursablePolicy.JOURNAL, card_account="Corporate Card")
    assert [p.mode for p in _plan(report, _mappings(), journal)] == [PostingMode.JOURNAL]
    plain = Expense("T1", dt.date(2026, 3, 1), "M", D("1.00"), "C")
    assert _report(plain).fingerprint() == _report(plain).fingerprint()
    assert "card" not in str(_report(plain).fingerprint())  # the digest itself; the field is left out when empty


def test_names_used_lists_cards_and_merchants_only_when_asked() -> None:
    report = _report(_card(1, "5.00", "Corner Cafe", card="1111"))
    mappings = _mappings()
    assert {r.kind for r in mappings.names_used(report, needs_vendor=False)} == {MappingKind.CATEGORY}
    kinds = {r.kind for r in mappings.names_used(report, needs_vendor=False,
                                                 cards=("Corporate Card", "Credit Card Misc."))}
    assert kinds == {MappingKind.CATEGORY, MappingKind.CARD, MappingKind.MERCHANT}


# ---------------------------------------------------------------------------------------------- config


def test_credit_card_policy_is_accepted_and_needs_card_account() -> None:
    ok = parse_config({"quickbooks": {"non_reimbursable": "credit_card", "card_account": "Corporate Card"}}, environ={})
    assert ok.quickbooks.non_reimbursable is NonReimbursablePolicy.CREDIT_CARD
    with pytest.raises(ConfigError, match="card_account"):
        parse_config({"quickbooks": {"non_reimbursable": "credit_card"}}, environ={})


# ---------------------------------------------------------------------------------------------- qbXML


def _postings() -> list[PlannedPosting]:
    report = _report(_card(1, "412.30", tags=("Sales", "Acme Corp:Project X"), billable=True), _card(2, "-20.00"))
    return _plan(report, _mappings(vendors=("Delta Air Lines",)))


def _flat(xml: bytes) -> str:
    return re.sub(r">\s+<", "><", xml.decode())


@pytest.mark.parametrize("version", VERSIONS)
def test_charge_and_credit_requests_and_their_queries_are_schema_valid(reference_dir: Path, version: str) -> None:
    charge, credit = _postings()
    for posting in (charge, credit):
        rq = write_request(posting, f"w-{posting.part}", version)
        query = txn_query_by_ref(posting.mode, [posting.ref_number], f"q-{posting.part}", version,
                                 include_line_items=True)
        assert_valid(reference_dir, build_message([rq, query], version=version), version)
    xml = _flat(build_message([write_request(charge, "1", version)], version=version))
    assert "<CreditCardChargeAddRq" in xml and "<PayeeEntityRef><FullName>Delta Air Lines</FullName>" in xml
    assert "<BillableStatus>Billable</BillableStatus>" in xml and "<Amount>412.30</Amount>" in xml
    credit_xml = _flat(build_message([write_request(credit, "2", version)], version=version))
    assert "<CreditCardCreditAddRq" in credit_xml and "<Amount>20.00</Amount>" in credit_xml
    assert "<CreditCardCreditQueryRq" in build_message(
        [txn_query_by_ref(credit.mode, ["X"], "3", version)], version=version).decode()


def test_a_card_request_refuses_the_wrong_mode() -> None:
    charge, credit = _postings()
    from mlconnector.qbxml.txns.credit_card import credit_card_charge_add
    with pytest.raises(QbxmlError):
        credit_card_charge_add(credit, "1", "13.0")


def test_the_simulator_saves_both_kinds_and_answers_queries_the_parser_reads(reference_dir: Path) -> None:
    qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    charge, credit = _postings()
    version = "13.0"
    answer = qb.process_request(build_message(
        [write_request(charge, "1", version), write_request(credit, "2", version)], version=version).decode())
    results = parse_response(answer).responses
    assert [r.status_code for r in results] == [0, 0]
    assert [t.kind for t in qb.transactions] == ["CreditCardCharge", "CreditCardCredit"]
    assert [t.ap_account for t in qb.transactions] == ["Corporate Card", "Corporate Card"]
    query = build_message([txn_query_by_ref(charge.mode, [charge.ref_number], "q", version, include_line_items=True)],
                          version=version)
    found = parse_response(qb.process_request(query.decode())).responses
    assert [t.txn_type for r in found for t in r.txns] == ["CreditCardCharge"]
    assert [t.ref_number for r in found for t in r.txns] == [charge.ref_number]


def test_the_simulator_refuses_a_charge_to_an_account_that_is_not_a_credit_card(reference_dir: Path) -> None:
    qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    charge = _postings()[0]
    wrong = PlannedPosting(**{**charge.__dict__, "account": "Accounts Payable"})
    answer = parse_response(
        qb.process_request(build_message([write_request(wrong, "1", "13.0")], version="13.0").decode())).responses
    assert answer[0].status_code == 3140 and not qb.transactions
