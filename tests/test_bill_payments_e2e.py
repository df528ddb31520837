"""Reimbursed in Expensify, paid in QuickBooks: bill payments end to end over HTTP.

The Expensify simulator speaks the real wire format and moves a report to Reimbursed after it was posted
and stamped; each pull reads posted reports again by ID; the server on loopback, driven as the Web
Connector drives it, posts to the QuickBooks simulator, which validates every request against Intuit's
schema and keeps each bill's open balance. Every test checks QuickBooks' ledger to the cent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mlconnector.config import Config, QuickBooksConfig
from mlconnector.models import PostingMode, PostingState
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults
from mlconnector.services.payments import queue_payments
from mlconnector.services.pull import PullSummary, pull_reports
from mlconnector.services.queue import plan_and_queue
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.payments import payment_counts
from mlconnector.store.postings import postings_for_report

from .qbwc_support import Clock
from .sim_helpers import FakeClock, make_client, make_config
from .test_posting_e2e import _run, serving

pytestmark = pytest.mark.slow

D = Decimal
ANN = "R00PayAnn001"  # 12 characters: the payment's RefNumber (≤ 11) is derived from it
BOB = "R00PayBob001"
REIMBURSED_ON = dt.date(2026, 4, 10)


def _expensify_report(report_id: str, email: str, name: str, *amounts: int) -> dict[str, Any]:
    return {
        "reportID": report_id, "reportName": f"Trip {report_id}", "status": "Approved", "accountEmail": email,
        "submitter": {"fullName": name}, "currency": "USD", "total": sum(amounts), "policyID": "0810E551A5F2A9C2",
        "policyName": "Acme", "created": "2026-03-01 09:00:00", "submitted": "2026-03-02 09:00:00",
        "approved": "2026-03-03 09:00:00",
        "transactionList": [
            {"transactionID": f"{report_id}-{n}", "created": "2026-03-01", "merchant": f"Merchant {n}",
             "amount": cents, "category": "Travel Expense" if n % 2 else "Meals and Entertainment", "tag": "",
             "reimbursable": True, "billable": False}
            for n, cents in enumerate(amounts, 1)
        ],
    }


REPORTS = (
    _expensify_report(ANN, "ann@example.com", "Ann Smith", 41230, 5800),  # two lines: two bill parts
    _expensify_report(BOB, "bob@example.com", "Bob Jones", 7525),
)


class Firm:
    """One firm's pieces: Expensify, QuickBooks, the state file, and `mlconnector pull` / one update."""

    def __init__(self, tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator, **quickbooks: Any) -> None:
        self.path = tmp_path / "state.db"
        self.sim = sim
        self.qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
        self.expensify_clock = FakeClock()
        self.clock = Clock()
        options: dict[str, Any] = {"bill_payment_account": "Checking", "max_lines_per_txn": 1, **quickbooks}
        self.config: Config = dataclasses.replace(make_config(sim), quickbooks=QuickBooksConfig(**options))

    @contextmanager
    def serving(self) -> Iterator[tuple[str, Store]]:
        with serving(self.path, self.config, self.clock) as (url, store):
            yield url, store

    def pull(self, store: Store) -> tuple[PullSummary, list[str]]:
        """What `mlconnector pull` does: stamp, export (and watch), store, plan, queue payments."""
        with make_client(self.sim, self.expensify_clock) as client:
            summary = pull_reports(store, client, self.config)
        plan_and_queue(store, self.config, today=self.clock().date(), actor="pull")
        return summary, queue_payments(store, self.config, today=self.clock().date(), actor="pull")

    def ledger(self) -> Counter[str]:
        return Counter(t.kind for t in self.qb.transactions)

    def bills_of(self, report_id: str) -> list[Any]:
        return sorted((t for t in self.qb.bills() if t.ref_number.startswith(report_id)), key=lambda t: t.ref_number)


@pytest.fixture
def sim() -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(REPORTS, clock=FakeClock(), not_ready_polls=1, rate_limits=()) as running:
        yield running


def _post_and_stamp(firm: Firm, url: str, store: Store) -> None:
    firm.pull(store)
    assert _run(url, firm.qb).stopped == "done"
    stamped, _ = firm.pull(store)
    assert sorted(stamped.stamped) == [ANN, BOB]
    assert firm.ledger() == Counter({"Bill": 3})


def test_reimbursed_after_stamping_pays_every_part_once_from_the_bank_account_on_the_reimbursed_day(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator
) -> None:
    firm = Firm(tmp_path, reference_dir, sim)
    with firm.serving() as (url, store):
        _post_and_stamp(firm, url, store)
        sim.reimburse(ANN, REIMBURSED_ON, ach=True)
        before = len(sim.requests)
        summary, queued = firm.pull(store)
        calls = Counter(r.job_type for r in sim.requests[before:])
        watch_jobs = [json.loads(r.form["requestJobDescription"])["inputSettings"] for r in sim.requests[before:]
                      if r.job_type == "file" and "reportIDList" in r.form["requestJobDescription"]]
        assert summary.watched == [ANN, BOB] and summary.reimbursed == [ANN] and queued == [ANN]
        assert ANN in summary.unchanged and not summary.changed_after_posting
        assert _run(url, firm.qb).stopped == "done"
        # Again: no second payment, and a reimbursed report is no longer read again.
        again, queued_again = firm.pull(store)
        assert _run(url, firm.qb).stopped in ("done", "none")
        (payment,) = [p for p in postings_for_report(store, ANN) if p.mode is PostingMode.BILL_PAYMENT]
        counts = payment_counts(store)
        events = [e.event for e in store.audit.rows(report_id=ANN)]
    # Two date windows and one watch job (both posted reports, by ID, stamped or not), each polled twice.
    assert calls == Counter({"file": 3, "download": 6})
    assert watch_jobs == [{"type": "combinedReportData", "filters": {"reportIDList": f"{ANN},{BOB}"},
                           "reportState": "APPROVED,REIMBURSED,ARCHIVED"}]
    assert again.watched == [BOB] and queued_again == []
    assert firm.ledger() == Counter({"Bill": 3, "BillPaymentCheck": 1})
    (paid,) = firm.qb.bill_payments()
    bills = firm.bills_of(ANN)
    assert (paid.vendor, paid.ap_account, paid.bank_account, paid.txn_date) == (
        "Ann Smith", "Accounts Payable", "Checking", "2026-04-10")
    assert paid.applied == [(bills[0].txn_id, D("412.30")), (bills[1].txn_id, D("58.00"))]
    assert len(paid.ref_number) <= 11 and ANN in paid.memo and paid.external_guid
    assert [firm.qb.open_amount(b.txn_id) for b in bills] == [D("0.00"), D("0.00")]
    assert firm.qb.open_amount(firm.bills_of(BOB)[0].txn_id) == D("75.25")  # not reimbursed: left open
    assert payment.state is PostingState.POSTED and payment.txn_id == paid.txn_id
    assert counts["posted"] == 1 and counts["paid_by_hand"] == 0
    assert AuditEvent.REIMBURSED in events and events.count(AuditEvent.POSTED) == 3
    assert sim.labels(ANN) == {"ml-connector"}  # the stamp itself is unchanged


def test_a_report_reimbursed_before_its_first_pull_gets_its_bills_then_its_payment_in_one_update(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator
) -> None:
    sim.reimburse(ANN, None, ach=False)  # Expensify gives no date: the payment is dated the day it is posted
    firm = Firm(tmp_path, reference_dir, sim)
    with firm.serving() as (url, store):
        _, queued = firm.pull(store)
        assert queued == []  # never a payment for a bill that is not posted
        summary = _run(url, firm.qb)
        states = {p.mode: p.state for p in postings_for_report(store, ANN)}
    assert summary.stopped == "done", summary
    assert firm.ledger() == Counter({"Bill": 3, "BillPaymentCheck": 1})
    assert states == {PostingMode.BILL: PostingState.POSTED, PostingMode.BILL_PAYMENT: PostingState.POSTED}
    (paid,) = firm.qb.bill_payments()
    assert paid.txn_date == firm.clock().date().isoformat() and "(ACH)" not in paid.memo
    assert sorted(amount for _, amount in paid.applied) == [D("58.00"), D("412.30")]
    # The bills' write came before the payment's check and write in the same session.
    kinds = [k for k in ("BillAddRq", "BillQueryRq", "BillPaymentCheckAddRq")
             for r in summary.requests if k in r]
    assert kinds.count("BillPaymentCheckAddRq") == 1


@pytest.mark.parametrize("quickbooks_forgets", [False, True], ids=["error-recovery", "query-by-refnumber"])
def test_a_payment_whose_answer_is_lost_and_a_server_restart_is_paid_exactly_once(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator, quickbooks_forgets: bool
) -> None:
    firm = Firm(tmp_path, reference_dir, sim)
    with firm.serving() as (url, store):
        _post_and_stamp(firm, url, store)
        sim.reimburse(ANN, REIMBURSED_ON)
        firm.pull(store)
        crashed = _run(url, firm.qb, Faults(drop_response_on=2))  # round 1 checks the bills, round 2 pays
        assert crashed.stopped == "crashed"
    assert firm.ledger() == Counter({"Bill": 3, "BillPaymentCheck": 1})  # QuickBooks did apply it
    if quickbooks_forgets:
        firm.qb._recovery.clear()  # no stored answer: only the RefNumber and our ExternalGUID can tell
    with firm.serving() as (url, store):  # the server was killed; a new one on the same state file
        firm.clock.advance(minutes=10)
        summary = _run(url, firm.qb)
        firm.pull(store)
        assert _run(url, firm.qb).stopped in ("done", "none")
        (payment,) = [p for p in postings_for_report(store, ANN) if p.mode is PostingMode.BILL_PAYMENT]
    assert summary.stopped == "done", summary
    assert firm.ledger() == Counter({"Bill": 3, "BillPaymentCheck": 1})
    (paid,) = firm.qb.bill_payments()
    assert payment.state is PostingState.POSTED and payment.txn_id == paid.txn_id


def test_bills_already_paid_by_hand_get_no_payment_and_it_is_recorded(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator
) -> None:
    firm = Firm(tmp_path, reference_dir, sim)
    with firm.serving() as (url, store):
        _post_and_stamp(firm, url, store)
        for bill in firm.bills_of(ANN):
            firm.qb.pay_bill_by_hand(bill.txn_id)  # a bookkeeper used Pay Bills before Expensify said so
        sim.reimburse(ANN, REIMBURSED_ON)
        firm.pull(store)
        assert _run(url, firm.qb).stopped == "done"
        _, queued_again = firm.pull(store)
        assert _run(url, firm.qb).stopped in ("done", "none")
        payments = [p for p in postings_for_report(store, ANN) if p.mode is PostingMode.BILL_PAYMENT]
        counts = payment_counts(store)
        recorded = [e for e in store.audit.rows(report_id=ANN) if e.event == AuditEvent.PAID_IN_QUICKBOOKS]
    assert queued_again == [] and payments == []
    assert counts["paid_by_hand"] == 1 and counts["queued"] == 0
    assert len(firm.qb.bill_payments()) == 2 and all(p.external_guid is None for p in firm.qb.bill_payments())
    (entry,) = recorded
    assert sorted(b["txn_id"] for b in entry.detail["bills"]) == sorted(b.txn_id for b in firm.bills_of(ANN))


def test_a_bill_partly_paid_by_hand_blocks_the_payment_with_the_reason_until_the_rest_is_paid(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator
) -> None:
    firm = Firm(tmp_path, reference_dir, sim, max_lines_per_txn=250)
    with firm.serving() as (url, store):
        first = firm.pull(store)
        assert _run(url, firm.qb).stopped == "done"
        (bill,) = firm.bills_of(ANN)
        firm.qb.pay_bill_by_hand(bill.txn_id, D("100.00"))
        sim.reimburse(ANN, REIMBURSED_ON)
        firm.pull(store)
        assert _run(url, firm.qb).stopped == "done"
        (payment,) = [p for p in postings_for_report(store, ANN) if p.mode is PostingMode.BILL_PAYMENT]
        assert payment.state is PostingState.BLOCKED
        assert "370.30 open of 470.30" in (payment.reason or "") and "pay the rest by hand" in (payment.reason or "")
        firm.qb.pay_bill_by_hand(bill.txn_id)  # the bookkeeper pays the rest, as the reason says
        firm.clock.advance(hours=7)  # the next update that checks blocked work
        assert _run(url, firm.qb).stopped == "done"
        left = [p for p in postings_for_report(store, ANN) if p.mode is PostingMode.BILL_PAYMENT]
        counts = payment_counts(store)
    assert first[0].new == [ANN, BOB]
    assert left == [] and counts["paid_by_hand"] == 1
    assert all(p.external_guid is None for p in firm.qb.bill_payments())  # ml-connector paid nothing


def test_an_edit_in_expensify_after_stamping_is_changed_after_posting_and_nothing_is_posted_again(
    tmp_path: Path, reference_dir: Path, sim: ExpensifySimulator
) -> None:
    firm = Firm(tmp_path, reference_dir, sim)
    with firm.serving() as (url, store):
        _post_and_stamp(firm, url, store)

        def edit(data: dict[str, Any]) -> None:
            data["transactionList"][0]["amount"] = 51230
            data["total"] = 51230 + 5800

        sim.edit_report(ANN, edit)
        sim.reimburse(ANN, REIMBURSED_ON)  # reimbursed at the new amount: a person must look first
        summary, queued = firm.pull(store)
        assert _run(url, firm.qb).stopped in ("done", "none")
        states = [p.state for p in postings_for_report(store, ANN)]
    assert summary.changed_after_posting == [ANN] and queued == []
    assert firm.ledger() == Counter({"Bill": 3})  # nothing re-posted, no payment of the old bills
    assert states == [PostingState.POSTED, PostingState.POSTED]
