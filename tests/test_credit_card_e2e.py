"""Company-card charges and credits end to end over loopback HTTP: server, Web Connector driver, QuickBooks
simulator validating every request against Intuit's schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlconnector.models import Expense, PostingState, Report
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.quickbooks.records import Txn
from mlconnector.sandbox.webconnector import Faults
from mlconnector.services.mappings import set_mapping
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import postings_for_report

from .qbwc_support import Clock
from .test_posting_e2e import _config, _queue, _run, serving

pytestmark = pytest.mark.slow

D = Decimal


def _card(n: int, amount: str, merchant: str, card: str = "4242", **kw: Any) -> Expense:
    values: dict[str, Any] = {
        "transaction_id": f"T{n}", "date": dt.date(2026, 3, n), "merchant": merchant, "amount": D(amount),
        "category": "Travel Expense", "reimbursable": False, "card": card, "tags": ("Sales",),
    }
    values.update(kw)
    return Expense(**values)


EXPENSES = (
    Expense("T0", dt.date(2026, 3, 9), "Taxi", D("30.00"), "Travel Expense", tags=("Admin",)),  # owed to Ann
    _card(1, "412.30", "Delta Air Lines", tags=("Sales", "Acme Corp:Project X"), billable=True),
    _card(2, "58.00", "Corner Cafe", card="1111", category="Meals and Entertainment", tags=("Engineering",)),
    _card(3, "-20.00", " delta air lines ", tags=("Sales", "Acme Corp:Project X")),
    _card(4, "12.50", "UBER *TRIP", tags=()),
    _card(5, "0.00", "Nothing"),
)
CARDS = Report(
    report_id="R00Card1", name="March cards", submitter_email="ann@example.com", status="Approved", currency="USD",
    total=sum((e.amount for e in EXPENSES), D("0.00")), expenses=EXPENSES, approved=dt.date(2026, 3, 30),
)


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    sim = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    sim.add_account("Amex Card", "CreditCard")
    sim.add_vendor("Uber Technologies")
    return sim


def _config_cards() -> Any:
    return _config("bill", non_reimbursable="credit_card", card_account="Corporate Card")


def _map(store: Any) -> None:
    set_mapping(store, "card", "1111", "Amex Card", actor="test")
    set_mapping(store, "merchant", "UBER *TRIP", "Uber Technologies", actor="test")


def _card_txns(qb: QuickBooksSimulator) -> list[Txn]:
    return [t for t in qb.transactions if t.kind in ("CreditCardCharge", "CreditCardCredit")]


def _summary(txns: list[Txn]) -> list[tuple[Any, ...]]:
    return sorted(
        (t.kind, t.ap_account, t.vendor, t.txn_date, t.total,
         tuple((ln.account, ln.amount, ln.klass, ln.customer, ln.billable_status) for ln in t.lines))
        for t in txns
    )


EXPECTED = sorted([
    ("CreditCardCharge", "Corporate Card", "Delta Air Lines", "2026-03-01", D("412.30"),
     (("Travel Expense", D("412.30"), "Sales", "Acme Corp:Project X", "Billable"),)),
    ("CreditCardCharge", "Amex Card", "Credit Card Misc.", "2026-03-02", D("58.00"),
     (("Meals and Entertainment", D("58.00"), "Engineering", None, None),)),
    ("CreditCardCredit", "Corporate Card", "Delta Air Lines", "2026-03-03", D("20.00"),
     (("Travel Expense", D("20.00"), "Sales", "Acme Corp:Project X", "NotBillable"),)),
    ("CreditCardCharge", "Corporate Card", "Uber Technologies", "2026-03-04", D("12.50"),
     (("Travel Expense", D("12.50"), None, None, None),)),
])


def test_company_card_purchases_and_a_refund_post_as_charges_and_a_credit_beside_the_bill(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    config = _config_cards()
    with serving(tmp_path / "state.db", config) as (url, store):
        _map(store)
        _queue(store, config, (CARDS,))
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        postings = postings_for_report(store, "R00Card1")
        again = _run(url, qb)
    assert again.auth_status == "none"
    assert [p.state for p in postings] == [PostingState.POSTED] * 5
    cards = _card_txns(qb)
    assert _summary(cards) == EXPECTED
    assert [t.kind for t in cards].count("CreditCardCharge") == 3 and len(cards) == 4
    charges = sum((t.total for t in cards if t.kind == "CreditCardCharge"), D("0"))
    credits = sum((t.total for t in cards if t.kind == "CreditCardCredit"), D("0"))
    assert (charges, credits) == (D("482.80"), D("20.00"))
    (bill,) = qb.bills()
    assert bill.vendor == "Ann Smith" and bill.total == D("30.00")
    assert charges - credits + bill.total == CARDS.total
    assert len({t.ref_number for t in cards}) == 4 and all(len(t.ref_number) <= 11 for t in cards)
    assert all(t.memo.startswith("Expensify report R00Card1, expense T") for t in cards)
    assert {p.txn_id for p in postings} == {t.txn_id for t in qb.transactions}


@pytest.mark.parametrize("quickbooks_forgets", [False, True])
def test_a_lost_answer_and_a_restart_during_the_card_charges_posts_each_exactly_once(
    tmp_path: Path, qb: QuickBooksSimulator, quickbooks_forgets: bool
) -> None:
    config, clock = _config_cards(), Clock()
    path = tmp_path / "state.db"
    with serving(path, config, clock) as (url, store):
        _map(store)
        _queue(store, config, (CARDS,))
        crashed = _run(url, qb, Faults(drop_response_on=2))  # round 2 carries the bill and the card postings
        assert crashed.stopped == "crashed"
        assert len(_card_txns(qb)) == 4  # QuickBooks has them; we never heard
        assert store.posting_counts()[PostingState.SENT] == 5
    if quickbooks_forgets:
        qb._recovery.clear()  # QuickBooks restarted too: only the query by RefNumber can tell
    with serving(path, config, clock) as (url, store):
        assert _run(url, qb).stopped == "busy"
        clock.advance(minutes=10)
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        assert [p.state for p in postings_for_report(store, "R00Card1")] == [PostingState.POSTED] * 5
        recovered = store.audit.rows(event=AuditEvent.RECOVERED)
        again = _run(url, qb)
    assert again.auth_status == "none"
    assert len(recovered) == 5
    assert _summary(_card_txns(qb)) == EXPECTED  # each exactly once
    assert len(qb.bills()) == 1
    expected_how = "RefNumber" if quickbooks_forgets else "error recovery"
    assert all(expected_how in r.detail["how"] for r in recovered)
