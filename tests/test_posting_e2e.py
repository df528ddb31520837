"""Posting end to end over real HTTP: server on loopback, the Web Connector driver, the QuickBooks simulator.

Reports are stored and planned exactly as `pull` does; the server then posts them the way the Web
Connector drives it. Every test checks QuickBooks' side (the simulator's saved transactions) and ours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from mlconnector.config import Config, parse_config
from mlconnector.models import Expense, PostingState, Report
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults, RunSummary, WebConnector
from mlconnector.services.queue import plan_and_queue
from mlconnector.soap.server import make_wsgi_app, running_server
from mlconnector.soap.session import QbwcService
from mlconnector.soap.work import PostingWork
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import postings_for_report, postings_in
from mlconnector.store.reports import save_report

from .qbwc_support import PASSWORD, USER, Clock, settings

pytestmark = pytest.mark.slow

D = Decimal
TODAY = dt.date(2026, 4, 1)


def _expense(n: int, amount: str, category: str = "Travel Expense", **kw: Any) -> Expense:
    values: dict[str, Any] = {
        "transaction_id": f"T{n}", "date": dt.date(2026, 3, 1 + n % 27), "merchant": f"Merchant {n}",
        "amount": D(amount), "category": category, "tags": ("Sales", "Acme Corp:Project X"),
    }
    values.update(kw)
    return Expense(**values)


def _report(report_id: str, email: str, *expenses: Expense) -> Report:
    return Report(
        report_id=report_id, name=f"Report {report_id}", submitter_email=email, status="Approved", currency="USD",
        total=sum((e.amount for e in expenses), D("0.00")), expenses=expenses, approved=dt.date(2026, 3, 30),
    )


SAMPLE = (
    _report("R00Ann1", "ann@example.com", _expense(1, "412.30"), _expense(2, "58.00", "Meals and Entertainment")),
    _report("R00Ann2", "ann@example.com", _expense(3, "120.00", billable=True), _expense(4, "-20.00")),
    _report("R00Bob1", "bob@example.com", _expense(5, "75.25", "Office Supplies", tags=("Admin",))),
)


def _config(mode: str = "bill", **quickbooks: Any) -> Config:
    return parse_config({"quickbooks": {"mode": mode, **quickbooks}}, environ={})


def _queue(store: Store, config: Config, reports: tuple[Report, ...] = SAMPLE) -> None:
    for report in reports:
        save_report(store, report)
    plan_and_queue(store, config, today=TODAY)


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


@contextmanager
def serving(path: Path, config: Config, clock: Clock | None = None) -> Iterator[tuple[str, Store]]:
    store = Store.open(path, now=clock) if clock else Store.open(path)
    try:
        service = QbwcService(store, PostingWork(store, config), settings())
        with running_server(make_wsgi_app(lambda: service)) as srv:
            yield srv.soap_url, store
    finally:
        store.close()


def _run(url: str, qb: QuickBooksSimulator, faults: Faults | None = None) -> RunSummary:
    connector = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request, hcp_response=qb.hcp_response())
    return connector.run(faults)


def _states(store: Store) -> dict[str, list[str]]:
    return {r.report_id: [p.state.value for p in postings_for_report(store, r.report_id)] for r in SAMPLE}


def test_bill_mode_posts_every_report_once_with_the_right_accounts_classes_customers_and_totals(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config)
        # No vendor is mapped: reports wait for the QuickBooks vendor list (matched by e-mail).
        assert store.posting_counts()[PostingState.BLOCKED] == 3
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        assert _states(store) == {"R00Ann1": ["posted"], "R00Ann2": ["posted"], "R00Bob1": ["posted"]}
        again = _run(url, qb)
        posted = {p.report_id: p for p in postings_in(store, PostingState.POSTED)}
    assert again.auth_status == "none"  # nothing left: the Web Connector is told so
    bills = {b.ref_number: b for b in qb.bills()}
    assert sorted(bills) == ["R00Ann1", "R00Ann2", "R00Bob1"]
    assert {r: b.total for r, b in bills.items()} == {"R00Ann1": D("470.30"), "R00Ann2": D("100.00"),
                                                       "R00Bob1": D("75.25")}
    assert bills["R00Ann1"].vendor == "Ann Smith" and bills["R00Bob1"].vendor == "Bob Jones"
    ann2 = bills["R00Ann2"].lines
    assert [(ln.account, ln.amount, ln.klass, ln.customer, ln.billable_status) for ln in ann2] == [
        ("Travel Expense", D("120.00"), "Sales", "Acme Corp:Project X", "Billable"),
        ("Travel Expense", D("-20.00"), "Sales", "Acme Corp:Project X", "NotBillable"),
    ]
    assert {r: p.txn_id for r, p in posted.items()} == {r: b.txn_id for r, b in bills.items()}
    assert all(p.edit_sequence for p in posted.values())
    assert summary.round_trips == 2  # the whole lists, then one message with all three bills


def test_journal_mode_posts_balanced_entries_with_no_negative_amount(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    config = _config("journal", journal_credit_account="Accounts Payable")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config)
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        assert all(s == ["posted"] for s in _states(store).values())
    entries = qb.journal_entries()
    assert len(entries) == 3
    for entry in entries:
        debits = sum((ln.amount for ln in entry.lines if ln.side == "debit"), D("0"))
        credits = sum((ln.amount for ln in entry.lines if ln.side == "credit"), D("0"))
        assert debits == credits and all(ln.amount >= 0 for ln in entry.lines)
    ann2 = next(e for e in entries if any("R00Ann2" in ln.memo for ln in e.lines))
    assert sum((ln.amount for ln in ann2.lines if ln.side == "debit"), D("0")) == D("120.00")


@pytest.mark.parametrize("quickbooks_forgets", [False, True], ids=["error-recovery", "query-by-refnumber"])
def test_a_response_lost_after_quickbooks_applied_it_and_a_server_restart_posts_exactly_once(
    tmp_path: Path, qb: QuickBooksSimulator, quickbooks_forgets: bool
) -> None:
    config = _config("bill")
    path = tmp_path / "state.db"
    clock = Clock()
    with serving(path, config, clock) as (url, store):
        _queue(store, config)
        crashed = _run(url, qb, Faults(drop_response_on=2))  # round 2 carries the bills
        assert crashed.stopped == "crashed"
        assert len(qb.bills()) == 3  # QuickBooks has them; we never heard
        assert store.posting_counts()[PostingState.SENT] == 3
    if quickbooks_forgets:
        qb._recovery.clear()  # QuickBooks restarted too: only the query by RefNumber can tell
    with serving(path, config, clock) as (url, store):  # a restarted server on the same state file
        assert _run(url, qb).stopped == "busy"  # the answer may still come, for takeover_after_minutes
        clock.advance(minutes=10)
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        assert all(s == ["posted"] for s in _states(store).values())
        recovered = store.audit.rows(event=AuditEvent.RECOVERED)
        assert len(recovered) == 3
    assert sorted(b.ref_number for b in qb.bills()) == ["R00Ann1", "R00Ann2", "R00Bob1"]  # no duplicates
    expected_how = "RefNumber" if quickbooks_forgets else "error recovery"
    assert all(expected_how in r.detail["how"] for r in recovered)


def test_a_posting_lost_before_quickbooks_saw_it_is_sent_again_after_the_check(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config)
        refused = _run(url, qb, Faults(hresult_on=2))  # QuickBooks could not even parse the bills message
        assert refused.stopped == "error" and "0x80040400" in (refused.last_error or "")
        assert len(qb.bills()) == 0 and store.posting_counts()[PostingState.IN_DOUBT] == 3
        again = _run(url, qb)  # checked by RefNumber first (absent), then written once
        assert again.stopped == "done", again
        assert all(s == ["posted"] for s in _states(store).values())
    assert sorted(b.ref_number for b in qb.bills()) == ["R00Ann1", "R00Ann2", "R00Bob1"]


def test_an_inactive_account_blocks_only_the_reports_that_use_it_and_names_it(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    qb.set_active("account", "Meals and Entertainment", False)
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config)
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        states = _states(store)
        blocked = postings_for_report(store, "R00Ann1")[0]
    assert states == {"R00Ann1": ["blocked"], "R00Ann2": ["posted"], "R00Bob1": ["posted"]}
    # Planning sees the inactive account in the lists fetched this session and blocks before sending.
    assert '"Meals and Entertainment"' in (blocked.reason or "") and "inactive" in (blocked.reason or "")
    assert "mlconnector map set category" in (blocked.reason or "")
    assert sorted(b.ref_number for b in qb.bills()) == ["R00Ann2", "R00Bob1"]
    assert (summary.close_message or "").startswith("Posted 2, failed 0, in doubt 0; 1 blocked")


def test_verification_re_queries_references_when_the_lists_are_fresh(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        assert _run(url, qb).stopped == "done"  # fetches the lists, posts R00Ann1
        qb.set_active("account", "Office Supplies", False)
        _queue(store, config, SAMPLE[2:])  # Bob's report, planned from the cache (account still active there)
        assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.QUEUED]
        summary = _run(url, qb)
        reason = postings_for_report(store, "R00Bob1")[0].reason or ""
        requeried = store.audit.rows(event=AuditEvent.REQUERIED)
    queries = [etree.fromstring(r.encode()) for r in qb.requests[-1:]]
    assert summary.round_trips == 1 and queries[0].find(".//AccountQueryRq") is not None
    assert 'account "Office Supplies" is inactive' in reason
    assert requeried and all("references" in r.detail for r in requeried)


def test_a_3000_line_report_is_split_so_no_message_exceeds_the_line_budget(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    expenses = tuple(_expense(n, f"{1 + n % 97}.{n % 100:02d}", tags=("Sales",)) for n in range(3000))
    big = _report("R00Big", "ann@example.com", *expenses)
    config = _config("bill", max_lines_per_txn=250, max_lines_per_message=600)
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, (big,))
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        parts = postings_for_report(store, "R00Big")
    assert len(parts) == 12 and all(p.state is PostingState.POSTED for p in parts)
    line_counts = [len(etree.fromstring(r.encode()).findall(".//ExpenseLineAdd")) for r in qb.requests]
    assert max(line_counts) <= 600 and sum(line_counts) == 3000
    assert sum((b.total for b in qb.bills()), D("0")) == big.total
    assert summary.round_trips == 1 + 6  # the lists, then 3000 lines / 500 per message (two 250-line parts)


@pytest.mark.parametrize("still_in_quickbooks", [True, False], ids=["already-there", "deleted-in-quickbooks"])
def test_a_forced_replay_of_a_posted_report_checks_quickbooks_first_and_never_posts_twice(
    tmp_path: Path, qb: QuickBooksSimulator, still_in_quickbooks: bool
) -> None:
    from mlconnector.services.replay import replay_report

    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        assert _run(url, qb).stopped == "done"
        first_txn = postings_for_report(store, "R00Ann1")[0].txn_id
        if not still_in_quickbooks:
            qb.transactions[:] = [t for t in qb.transactions if t.ref_number != "R00Ann1"]
        replay_report(store, config, "R00Ann1", force=True, today=TODAY, actor="test")
        assert [p.state for p in postings_for_report(store, "R00Ann1")] == [PostingState.IN_DOUBT]
        assert _run(url, qb).stopped == "done"
        (posting,) = postings_for_report(store, "R00Ann1")
    bills = qb.find_txns(ref_number="R00Ann1")
    assert posting.state is PostingState.POSTED and len(bills) == 1
    if still_in_quickbooks:
        assert posting.txn_id == first_txn  # found by RefNumber: nothing was written
    else:
        assert posting.txn_id == bills[0].txn_id != first_txn  # absent, so posted again, once


def test_replay_of_a_failed_report_after_fixing_its_mapping_posts_it_exactly_once(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    from mlconnector.services.mappings import set_mapping
    from mlconnector.services.queue import replan_unsent
    from mlconnector.services.replay import replay_report

    config = _config("bill")
    qb.fail_next("BillAddRq", 3140, 'There is an invalid reference to QuickBooks Account "Office Supplies" in the Bill.')
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[2:])
        assert _run(url, qb).stopped == "done"
        (failed,) = postings_for_report(store, "R00Bob1")
        assert failed.state is PostingState.FAILED and failed.qb_status_code == 3140
        assert "mlconnector replay R00Bob1" in (failed.reason or "")
        set_mapping(store, "category", "Office Supplies", "Automobile Expense", actor="test")
        replan_unsent(store, config, today=TODAY, actor="test")  # what `map set` runs; failed reports stay failed
        replay_report(store, config, "R00Bob1", today=TODAY, actor="test")
        assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.QUEUED]
        assert _run(url, qb).stopped == "done"
        (posted,) = postings_for_report(store, "R00Bob1")
    (bill,) = qb.find_txns(ref_number="R00Bob1")
    assert posted.state is PostingState.POSTED and posted.txn_id == bill.txn_id
    assert [ln.account for ln in bill.lines] == ["Automobile Expense"]


def _foreign_bill(ref: str) -> str:
    """A bill a clerk typed in QuickBooks: same RefNumber, no ExternalGUID of ours."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="stopOnError">'
        '<BillAddRq><BillAdd><VendorRef><FullName>Bob Jones</FullName></VendorRef><TxnDate>2026-03-30</TxnDate>'
        f"<RefNumber>{ref}</RefNumber><ExpenseLineAdd><AccountRef><FullName>Office Supplies</FullName></AccountRef>"
        "<Amount>999.00</Amount></ExpenseLineAdd></BillAdd></BillAddRq></QBXMLMsgsRq></QBXML>"
    )


def test_recovery_never_takes_someone_elses_transaction_with_our_refnumber_for_ours(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    # Busy twice: checked and re-sent once within the session, then left in doubt for the next one.
    qb.fail_next("BillAddRq", 3175, "The bill could not be locked.", times=2)
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[2:])
        assert _run(url, qb).stopped == "done"
        assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.IN_DOUBT]
        qb.process_request(_foreign_bill("R00Bob1"))  # meanwhile a clerk enters a vendor invoice "R00Bob1"
        assert _run(url, qb).stopped == "done"
        (posting,) = postings_for_report(store, "R00Bob1")
    assert posting.state is PostingState.FAILED and posting.txn_id is None
    assert "that ml-connector did not create" in (posting.reason or "")
    assert [b.total for b in qb.find_txns(ref_number="R00Bob1")] == [D("999.00")]  # ours was not added either


def test_a_forced_replay_finds_a_bill_renumbered_in_quickbooks_by_its_txnid(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    from mlconnector.services.replay import replay_report

    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        assert _run(url, qb).stopped == "done"
        (first,) = postings_for_report(store, "R00Ann1")
        qb.find_txns(ref_number="R00Ann1")[0].ref_number = "AP-2026-17"  # the bookkeeper renumbered it
        replay_report(store, config, "R00Ann1", force=True, today=TODAY, actor="test")
        assert _run(url, qb).stopped == "done"
        (posting,) = postings_for_report(store, "R00Ann1")
    assert posting.state is PostingState.POSTED and posting.txn_id == first.txn_id
    assert len(qb.bills()) == 1


def test_long_vendor_and_customer_lists_are_fetched_in_pages_and_stale_names_dropped(
    tmp_path: Path, qb: QuickBooksSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlconnector.soap.work import lists as list_phase

    monkeypatch.setattr(list_phase, "LIST_PAGE", 25)
    for n in range(60):
        qb.add_vendor(f"Vendor {n:02d}", email=f"v{n:02d}@example.com")
        qb.add_customer(f"Client {n:02d}")
    late = _report("R00Late", "v59@example.com", _expense(1, "10.00", tags=("Sales", "Client 59")))
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        store.conn.execute(  # a customer cached long ago and since deleted in QuickBooks
            "INSERT INTO qb_lists (kind, full_name, list_id, is_active, seen_at) VALUES ('customer', 'Gone Inc', 'X', 1, 'old')")
        _queue(store, config, (late,))
        summary = _run(url, qb)
        assert summary.stopped == "done", summary
        cached = dict(store.conn.execute("SELECT kind, COUNT(*) FROM qb_lists GROUP BY kind").fetchall())
        gone = store.conn.execute("SELECT 1 FROM qb_lists WHERE full_name = 'Gone Inc'").fetchone()
        (posting,) = postings_for_report(store, "R00Late")
    assert posting.state is PostingState.POSTED  # its vendor and customer were on the last pages
    assert cached["vendor"] == 64 and cached["customer"] == 62 and gone is None  # 60 + 4 seeded vendors
    assert summary.round_trips == 3 + 1  # 62 vendors and 62 customers in pages of 25, then the bill
    (bill,) = qb.find_txns(ref_number="R00Late")
    assert bill.vendor == "Vendor 59" and bill.lines[0].customer == "Client 59"
