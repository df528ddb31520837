"""The company file's own settings, as the Web Connector reports them, end to end over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.store.postings import postings_for_report

from .qbwc_support import PASSWORD, USER
from .test_posting_e2e import SAMPLE, _config, _queue, _run, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


@pytest.mark.parametrize("hcp", [True, False], ids=["strHCPResponse", "queried"])
def test_with_class_tracking_off_only_class_carrying_reports_wait_and_status_shows_the_company_file(
    home: Path, qb: QuickBooksSimulator, cli: CliRunner, hcp: bool
) -> None:
    """The settings come with the Web Connector's strHCPResponse, or, without one, are asked of QuickBooks."""
    from .test_posting_e2e import _expense, _report

    qb.class_tracking = False
    plain = _report("R00NoCls", "bob@example.com", _expense(9, "20.00", "Office Supplies", tags=()))
    config = _config("bill")
    with serving(home / "state.db", config) as (url, store):
        _queue(store, config, (*SAMPLE, plain))
        answer = qb.hcp_response() if hcp else ""
        summary = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request, hcp_response=answer).run()
        states = {r: [p.state.value for p in postings_for_report(store, r)] for r in ("R00Ann1", "R00NoCls")}
        reason = postings_for_report(store, "R00Ann1")[0].reason or ""
    assert summary.stopped == "done", summary
    asked = [r for r in qb.requests if "PreferencesQueryRq" in r]
    if hcp:
        assert asked == []  # the Web Connector's answer was enough
    else:
        assert len(asked) == 1 and "HostQueryRq" in asked[0]  # once per session, validated against the schema
    assert states == {"R00Ann1": ["blocked"], "R00NoCls": ["posted"]}
    assert "class tracking is off in this QuickBooks company file" in reason and "class_tag_level = 0" in reason
    assert [b.ref_number for b in qb.bills()] == ["R00NoCls"]
    company = json.loads(cli.invoke(app, ["status", "--json"]).stdout)["quickbooks_company"]
    assert company["class_tracking"] is False and company["company_name"] == "Acme Corp"
    assert company["country"] == "US" and company["read_at"]
    shown = " ".join(cli.invoke(app, ["status"]).stdout.split())
    assert "class tracking off; multi-currency off; closing date none" in shown, shown


def test_a_garbage_host_company_preferences_answer_does_not_stop_posting(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        summary = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request,
                               hcp_response="<QBXML><not-closed").run()
    assert summary.stopped == "done", summary
    assert [b.ref_number for b in qb.bills()] == ["R00Ann1"]


@pytest.mark.parametrize("policy", ["next_open_day", "block"])
def test_a_report_dated_in_a_closed_period_moves_to_the_next_open_day_or_waits(
    tmp_path: Path, qb: QuickBooksSimulator, policy: str
) -> None:
    qb.closing_date = "2026-03-15"  # every SAMPLE report is dated (by its last expense) on or before it
    config = _config("bill", closed_period=policy)
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE)
        assert _run(url, qb).stopped == "done"
        bob = postings_for_report(store, "R00Bob1")[0]
        notes = [r.detail for r in store.audit.rows(event="note", report_id="R00Bob1") if "why" in r.detail]
    bills = {b.ref_number: b for b in qb.bills()}
    if policy == "block":
        assert bob.state.value == "blocked" and "closing date 2026-03-15" in (bob.reason or "")
        assert bills == {}
    else:
        assert sorted(bills) == ["R00Ann1", "R00Ann2", "R00Bob1"]
        assert bills["R00Bob1"].txn_date == "2026-03-16"
        assert "the period is closed in QuickBooks" in bills["R00Bob1"].memo
        assert notes and notes[0]["txn_date"] == "2026-03-16"
    assert all(b.txn_date > "2026-03-15" for b in bills.values())  # nothing lands in the closed period


def test_a_report_in_another_currency_than_the_company_file_is_blocked_and_nothing_posted(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    from dataclasses import replace

    euro = replace(SAMPLE[2], report_id="R00Eur1", currency="EUR")
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, (SAMPLE[0], euro))
        assert _run(url, qb).stopped == "done"
        posting = postings_for_report(store, "R00Eur1")[0]
    assert posting.state.value == "blocked"
    assert "in EUR but the company file's home currency is USD" in (posting.reason or "")
    assert [b.ref_number for b in qb.bills()] == ["R00Ann1"]


def test_with_multicurrency_on_the_home_currency_decides_which_reports_post(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    from dataclasses import replace

    qb.multicurrency, qb.home_currency = True, "Euro"
    euro = replace(SAMPLE[2], report_id="R00Eur1", currency="EUR")
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, (SAMPLE[0], euro))
        assert _run(url, qb).stopped == "done"
        dollars = postings_for_report(store, "R00Ann1")[0]
    assert [b.ref_number for b in qb.bills()] == ["R00Eur1"]
    assert dollars.state.value == "blocked"
    assert "in USD but the company file's home currency is EUR" in (dollars.reason or "")


def test_journal_entries_post_with_their_reference_when_quickbooks_numbers_journal_entries(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    qb.journal_numbering = True  # QuickBooks keeps a RefNumber it is given; it numbers only the ones without
    config = _config("journal")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:2])
        assert _run(url, qb).stopped == "done"
        states = {r.report_id: [p.state.value for p in postings_for_report(store, r.report_id)] for r in SAMPLE[:2]}
    assert all(s == ["posted"] * len(s) for s in states.values()), states
    assert sorted(j.ref_number for j in qb.journal_entries()) == sorted(r.report_id for r in SAMPLE[:2])


@pytest.mark.parametrize("hcp", [True, False], ids=["strHCPResponse", "queried"])
def test_a_report_blocked_by_class_tracking_posts_by_itself_once_class_tracking_is_turned_on(
    tmp_path: Path, qb: QuickBooksSimulator, hcp: bool
) -> None:
    from .qbwc_support import Clock

    clock = Clock()
    qb.class_tracking = False
    config = _config("bill")

    def update(url: str) -> None:
        answer = qb.hcp_response() if hcp else ""
        assert WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request, hcp_response=answer).run().stopped \
            in ("done", "nothing to do")

    with serving(tmp_path / "state.db", config, clock) as (url, store):
        _queue(store, config, SAMPLE[:1])
        update(url)
        assert postings_for_report(store, "R00Ann1")[0].state.value == "blocked"
        qb.class_tracking = True  # the bookkeeper turns it on in QuickBooks
        clock.advance(minutes=61)
        update(url)
        state = postings_for_report(store, "R00Ann1")[0].state.value
    assert state == "posted"
    assert [b.ref_number for b in qb.bills()] == ["R00Ann1"]
