"""Checks, checks to print, vendor credits, debit-card checks and company-card bills, end to end over HTTP.

The server on loopback, the Web Connector driver and the QuickBooks simulator (every request validated
against Intuit's schema). Each test checks QuickBooks' ledger: the transactions, their accounts, payees
and totals to the cent, and that a lost answer plus a restart still leaves each one exactly once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator, Txn
from mlconnector.sandbox.webconnector import Faults
from mlconnector.store.postings import postings_for_report

from .qbwc_support import Clock
from .test_posting_e2e import _config, _expense, _queue, _report, _run, serving

pytestmark = pytest.mark.slow

D = Decimal

REPORTS = (
    _report("R00Ann1", "ann@example.com", _expense(1, "412.30"), _expense(2, "58.00", "Meals and Entertainment")),
    _report("R00Bob1", "bob@example.com", _expense(5, "75.25", "Office Supplies", tags=("Admin",))),
)


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def _ledger(qb: QuickBooksSimulator) -> Counter[str]:
    return Counter(t.kind for t in qb.transactions)


def _by_report(qb: QuickBooksSimulator, kind: str) -> dict[str, Txn]:
    found: dict[str, Txn] = {}
    for txn in qb.find_txns(kind=kind):
        report_id = txn.memo.split(": ")[0].removeprefix("Expensify report ")
        assert report_id not in found, f"{report_id} is in QuickBooks twice"
        found[report_id] = txn
    return found


def test_check_mode_writes_numbered_checks_from_the_bank_account_to_each_employee(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("check", check_account="Checking")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, REPORTS)
        summary = _run(url, qb)
        posted = store.posting_counts()[PostingState.POSTED]
    assert summary.stopped == "done", summary
    assert posted == 2 and _ledger(qb) == Counter({"Check": 2})
    checks = _by_report(qb, "Check")
    assert {r: (c.ap_account, c.vendor, c.total, c.ref_number, c.to_be_printed) for r, c in checks.items()} == {
        "R00Ann1": ("Checking", "Ann Smith", D("470.30"), "R00Ann1", False),
        "R00Bob1": ("Checking", "Bob Jones", D("75.25"), "R00Bob1", False),
    }
    assert [(ln.account, ln.amount, ln.klass) for ln in checks["R00Bob1"].lines] == [
        ("Office Supplies", D("75.25"), "Admin")]


@pytest.mark.parametrize("quickbooks_forgets", [False, True], ids=["error-recovery", "query-by-payee-and-date"])
def test_checks_to_print_lost_with_their_answer_and_a_restart_are_written_exactly_once(
    tmp_path: Path, qb: QuickBooksSimulator, quickbooks_forgets: bool
) -> None:
    config = _config("check", check_account="Checking", check_to_print=True)
    path, clock = tmp_path / "state.db", Clock()
    with serving(path, config, clock) as (url, store):
        _queue(store, config, REPORTS)
        crashed = _run(url, qb, Faults(drop_response_on=2))  # round 2 carries the checks
        assert crashed.stopped == "crashed" and _ledger(qb) == Counter({"Check": 2})
    if quickbooks_forgets:
        qb._recovery.clear()  # no stored answer: only payee, date and our ExternalGUID can tell
    for number, check in enumerate(qb.find_txns(kind="Check"), start=1001):
        check.ref_number = str(number)  # a bookkeeper printed them meanwhile: QuickBooks numbered them
    # Someone else's check to the same payee that day is no conflict and not ours.
    ours = qb.find_txns(kind="Check")[0]
    qb.transactions.append(dataclasses.replace(ours, txn_id="FOREIGN-1", ref_number="2001", external_guid=None))
    with serving(path, config, clock) as (url, store):
        clock.advance(minutes=10)
        summary = _run(url, qb)
        states = store.posting_counts()
    assert summary.stopped == "done", summary
    assert states[PostingState.POSTED] == 2 and states[PostingState.QUEUED] == 0
    assert _ledger(qb) == Counter({"Check": 3})  # ours were not written again
    assert sorted(c.ref_number for c in qb.find_txns(kind="Check")) == ["1001", "1002", "2001"]


def test_a_refund_report_becomes_one_vendor_credit_exactly_once_after_a_lost_answer(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    refund = _report("R00Ann9", "ann@example.com", _expense(1, "-120.00"), _expense(2, "20.00"))
    config = _config("bill")
    path, clock = tmp_path / "state.db", Clock()
    with serving(path, config, clock) as (url, store):
        _queue(store, config, (refund,))
        assert _run(url, qb, Faults(drop_response_on=2)).stopped == "crashed"
    with serving(path, config, clock) as (url, store):
        clock.advance(minutes=10)
        summary = _run(url, qb)
        posted = store.posting_counts()[PostingState.POSTED]
    assert summary.stopped == "done" and posted == 1
    (credit,) = qb.find_txns(kind="VendorCredit")
    assert (credit.vendor, credit.ap_account, credit.ref_number, credit.total) == (
        "Ann Smith", "Accounts Payable", "R00Ann9", D("100.00"))
    assert sorted(ln.amount for ln in credit.lines) == [D("-20.00"), D("120.00")]
    assert _ledger(qb) == Counter({"VendorCredit": 1})


def test_company_card_expenses_by_debit_card_are_checks_and_with_the_bill_policy_bills_to_the_issuer(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    qb.add_vendor("Card Issuer Bank")
    mixed = _report("R00Mix1", "ann@example.com", _expense(1, "100.00"),
                    _expense(2, "30.00", reimbursable=False), _expense(3, "12.50", reimbursable=False))
    debit = _config("bill", non_reimbursable="debit_card", card_account="Checking")
    with serving(tmp_path / "debit.db", debit) as (url, store):
        _queue(store, debit, (mixed,))
        assert _run(url, qb).stopped == "done"
    (bill,) = qb.bills()
    (check,) = qb.find_txns(kind="Check")
    assert (bill.vendor, bill.total) == ("Ann Smith", D("100.00"))
    assert (check.ap_account, check.vendor, check.total, check.to_be_printed) == (
        "Checking", "Ann Smith", D("42.50"), False)
    issuer = _config("bill", non_reimbursable="bill", card_bill_vendor="Card Issuer Bank")
    other = QuickBooksSimulator.seeded(schema_dir=qb.schema_dir)
    other.add_vendor("Card Issuer Bank")
    with serving(tmp_path / "issuer.db", issuer) as (url, store):
        _queue(store, issuer, (mixed,))
        assert _run(url, other).stopped == "done"
    assert sorted((b.vendor, b.total) for b in other.bills()) == [("Ann Smith", D("100.00")),
                                                                   ("Card Issuer Bank", D("42.50"))]


def test_a_category_mapped_to_an_item_posts_an_item_line_and_an_inactive_item_blocks_naming_it(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    from mlconnector.services.mappings import set_mapping

    qb.add_service_item("Consulting Travel")
    qb.add_service_item("Retired Service", active=False)
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        set_mapping(store, "item", "Travel Expense", "Consulting Travel", actor="test")
        set_mapping(store, "item", "Office Supplies", "Retired Service", actor="test")
        _queue(store, config, REPORTS)
        summary = _run(url, qb)
        states = {r.report_id: [p.state for p in postings_for_report(store, r.report_id)] for r in REPORTS}
        reason = postings_for_report(store, "R00Bob1")[0].reason or ""
    assert summary.stopped == "done", summary
    assert states == {"R00Ann1": [PostingState.POSTED], "R00Bob1": [PostingState.BLOCKED]}
    (bill,) = qb.bills()
    assert sorted((ln.side, ln.account, ln.amount) for ln in bill.lines) == [
        ("expense", "Meals and Entertainment", D("58.00")), ("item", "Consulting Travel", D("412.30"))]
    assert 'mapped to item "Retired Service", which is inactive' in reason and 'map set item' in reason
