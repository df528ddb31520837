"""Exactly once under every Web Connector pattern, end to end over loopback HTTP.

Two Web Connectors (or one slow QuickBooks) overlapping, a takeover after which QuickBooks finishes the
old batch anyway, a server stopped between calls, answers whose requestIDs were swapped, and requests
QuickBooks refuses whole. QuickBooks is the simulator, validating every request against Intuit's schema;
each test checks QuickBooks' side (its saved bills) as well as ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults, RunSummary, WebConnector
from mlconnector.services.audit import check_chain
from mlconnector.services.status import web_connector_status
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import postings_for_report, postings_in

from .qbwc_support import PASSWORD, USER, Clock
from .test_posting_e2e import SAMPLE, _config, _queue, _run, _states, serving

pytestmark = pytest.mark.slow

REFS = ["R00Ann1", "R00Ann2", "R00Bob1"]


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def _in_background(url: str, qb: QuickBooksSimulator) -> tuple[threading.Thread, list[RunSummary]]:
    """A Web Connector run in its own thread (its QuickBooks may be held); the summary lands in the list."""
    out: list[RunSummary] = []
    thread = threading.Thread(target=lambda: out.append(_run(url, qb)), daemon=True)
    thread.start()
    return thread, out


def _bill_txns(qb: QuickBooksSimulator) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for bill in qb.bills():
        found.setdefault(bill.ref_number, []).append(bill.txn_id)
    return found


def test_a_second_update_while_a_batch_is_inside_quickbooks_is_busy_and_every_report_posts_once(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config, clock = _config("bill"), Clock()
    with serving(home / "state.db", config, clock) as (url, store):
        _queue(store, config)
        held = qb.hold("BillAddRq")
        thread, first = _in_background(url, qb)
        assert held.wait_entered()  # the bills are inside QuickBooks; the first Web Connector waits
        clock.advance(minutes=9)
        second = _run(url, qb)
        session = web_connector_status(store)["qbwc_session"]
        held.release()
        thread.join(30)
        third = _run(url, qb)
        states = _states(store)
    assert second.auth_status == "busy" and "still running" in (second.close_message or "")
    assert session["awaiting_answer"] is True and session["busy_until"] == "2026-03-30T09:10:00+00:00"
    assert first[0].stopped == "done", first
    assert states == {r: ["posted"] for r in REFS}
    assert {ref: len(ids) for ref, ids in _bill_txns(qb).items()} == dict.fromkeys(REFS, 1)
    assert third.auth_status == "none"


def test_after_the_takeover_quickbooks_finishing_the_old_batch_is_recorded_as_one_duplicate_each(
    home: Path, qb: QuickBooksSimulator, cli: CliRunner
) -> None:
    config, clock = _config("bill"), Clock()
    with serving(home / "state.db", config, clock) as (url, store):
        _queue(store, config)
        held = qb.hold("BillAddRq")
        thread, late = _in_background(url, qb)
        assert held.wait_entered()
        clock.advance(minutes=10)  # takeover_after_minutes: the answer is given up
        takeover = _run(url, qb)  # asks QuickBooks first (nothing there yet), then writes the bills
        assert takeover.stopped == "done", takeover
        ours = {p.report_id: p.txn_id for p in postings_in(store, PostingState.POSTED)}
        held.release()  # QuickBooks finishes the old batch after all, and its answer arrives
        thread.join(30)
        after = _run(url, qb)
        duplicates = store.audit.rows(event=AuditEvent.DUPLICATE_IN_QUICKBOOKS)
    status = json.loads(cli.invoke(app, ["status", "--json"]).stdout)
    in_qb = _bill_txns(qb)
    assert {ref: len(ids) for ref, ids in in_qb.items()} == dict.fromkeys(REFS, 2)  # QuickBooks did post twice
    assert late[0].stopped == "done" and late[0].progress[-1] == 100
    assert "3 posted twice in QuickBooks" in (late[0].close_message or "")
    assert after.auth_status == "none"  # nothing is posted a third time
    assert len(duplicates) == 3
    listed = {d["report_id"]: d for d in status["duplicates"]["items"]}
    assert status["duplicates"]["count"] == 3 and sorted(listed) == REFS
    for ref in REFS:
        item = listed[ref]
        assert item["kept_txn_id"] == ours[ref]
        assert sorted([item["kept_txn_id"], *item["duplicate_txn_ids"]]) == sorted(in_qb[ref])
        assert item["fix"].startswith(f"void or delete TxnID {item['duplicate_txn_ids'][0]} in QuickBooks")


def test_serve_stopped_between_calls_lets_the_next_update_in_at_once(home: Path, qb: QuickBooksSimulator) -> None:
    config, clock = _config("bill"), Clock()
    path = home / "state.db"
    with serving(path, config, clock) as (url, store):
        _queue(store, config)
        cut = _run(url, qb, Faults(stop_after=1))  # the lists came back; then the server went away
        assert cut.stopped == "stopped" and len(qb.bills()) == 0
    clock.advance(seconds=30)
    with serving(path, config, clock) as (url, store):  # restarted: no 30-minute wait for the old session
        summary = _run(url, qb)
        states = _states(store)
        old = store.conn.execute("SELECT state, last_error FROM qbwc_sessions ORDER BY created_at LIMIT 1").fetchone()
    assert summary.stopped == "done", summary
    assert states == {r: ["posted"] for r in REFS} and sorted(_bill_txns(qb)) == REFS
    assert old[0] == "closed" and "replaced" in old[1]


def test_an_answer_with_swapped_request_ids_records_no_txn_id_on_the_wrong_report(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    with serving(home / "state.db", config) as (url, store):
        _queue(store, config)
        summary = _run(url, qb, Faults(swap_request_ids_on=2))  # round 2 carries the bills
        recorded = {p.report_id: p.txn_id for p in postings_in(store, PostingState.POSTED)}
        doubted = [r.detail for r in store.audit.rows(event=AuditEvent.IN_DOUBT)]
    assert summary.stopped == "done", summary
    assert any("did not match what was sent" in str(d.get("reason")) for d in doubted)
    in_qb = _bill_txns(qb)
    assert {ref: len(ids) for ref, ids in in_qb.items()} == dict.fromkeys(REFS, 1)
    assert recorded == {ref: ids[0] for ref, ids in in_qb.items()}  # each TxnID on its own report


def test_an_hresult_on_the_verify_request_is_explained_and_fails_the_postings_after_three_sessions(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    with serving(home / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        assert _run(url, qb).stopped == "done"  # the lists are fresh now: later sessions verify by name
        _queue(store, config, SAMPLE[2:])
        qb.refuse_when = lambda text: "<AccountQueryRq" in text and "<FullName>" in text
        runs = [_run(url, qb) for _ in range(3)]
        failed = postings_for_report(store, "R00Bob1")[0]
        last = _run(url, qb)
        errors = [r.detail for r in store.audit.rows(event=AuditEvent.SESSION_ERROR) if "hresult" in r.detail]
    assert [r.stopped for r in runs] == ["error"] * 3
    first_error = runs[0].last_error or ""
    assert first_error.startswith("QuickBooks could not process the request ml-connector sent (0x80040400: ")
    assert "1 report(s) will be tried again at the next update (R00Bob1; failure 1 of 3" in first_error
    assert "marked failed after 3 identical failures (R00Bob1)" in (runs[2].last_error or "")
    assert failed.state is PostingState.FAILED and (failed.qb_status_message or "").startswith("0x80040400: ")
    assert len(errors) == 3 and last.auth_status == "none"
    assert sorted(_bill_txns(qb)) == ["R00Ann1"]


def test_a_write_quickbooks_cannot_read_is_checked_retried_and_failed_after_three_identical_failures(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config = _config("bill")
    qb.refuse_when = lambda text: "<BillAddRq" in text
    with serving(home / "state.db", config) as (url, store):
        _queue(store, config)
        runs = [_run(url, qb) for _ in range(3)]
        after_two = [r.stopped for r in runs[:2]]
        failed = postings_in(store, PostingState.FAILED)
        recovered = store.audit.rows(event=AuditEvent.RECOVERED)
    assert after_two == ["error", "error"] and runs[2].stopped == "error"
    assert len(recovered) == 6  # sessions 2 and 3 asked QuickBooks first, found nothing, queued again
    assert len(failed) == 3 and all((p.qb_status_message or "").startswith("0x80040400") for p in failed)
    assert all("3 times in a row" in (p.reason or "") for p in failed)
    assert qb.bills() == []


def test_audit_verify_proves_the_stored_qbxml_messages_unchanged(home: Path, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    path = home / "state.db"
    with serving(path, config) as (url, store):
        _queue(store, config)
        assert _run(url, qb).stopped == "done"
    store = Store.open(path)
    try:
        intact = check_chain(store)
        store.conn.execute("UPDATE qbxml_messages SET response_xml = replace(response_xml, 'R00Ann1', 'R00Ann9')"
                           " WHERE kind = 'write'")
        store.conn.commit()
        edited = check_chain(store)
    finally:
        store.close()
    assert intact.intact and intact.messages == 2  # the lists and the bills, each request and answer
    assert not edited.intact and edited.describe() == (
        "the answer of qbXML message 2 was changed after the audit log recorded it")


def _serve_process(home: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "MLCONNECTOR_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "mlconnector", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("Serving the Web Connector at http://127.0.0.1:"), line + (proc.stderr.read()
                                                                                      if proc.stderr else "")
    return proc, line.split(" at ")[1].split(" ")[0]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_serve_process_killed_between_calls_and_restarted_posts_at_once_and_exactly_once(
    home: Path, qb: QuickBooksSimulator
) -> None:
    init = CliRunner().invoke(app, ["init", "--non-interactive", "--qbwc-user", USER],
                              env={"MLCONNECTOR_QBWC_PASSWORD": PASSWORD})
    assert init.exit_code == 0, init.output
    config = _config("bill")
    store = Store.open(home / "state.db")
    try:
        _queue(store, config)
    finally:
        store.close()
    first, url = _serve_process(home)
    try:
        cut = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request,
                           hcp_response=qb.hcp_response()).run(Faults(stop_after=1))
    finally:
        first.kill()  # SIGKILL between two calls: no shutdown code runs
        first.communicate(timeout=20)
    assert cut.stopped == "stopped" and qb.bills() == []
    second, url = _serve_process(home)
    try:
        summary = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request,
                               hcp_response=qb.hcp_response()).run()
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=20)
    assert summary.stopped == "done", summary
    assert {ref: len(ids) for ref, ids in _bill_txns(qb).items()} == dict.fromkeys(REFS, 1)


def test_a_recovery_check_quickbooks_keeps_refusing_stops_holding_up_the_other_reports(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config, clock = _config("bill"), Clock()
    with serving(home / "state.db", config, clock) as (url, store):
        _queue(store, config, SAMPLE[:1])
        assert _run(url, qb, Faults(drop_response_on=2)).stopped == "crashed"  # R00Ann1's bill: in doubt
        clock.advance(minutes=10)
        qb.refuse_when = lambda text: "BillQueryRq" in text or "oldMessageSetID" in text
        # Its checks are refused whole: the status check three times, then the query by RefNumber three times.
        refused = [_run(url, qb) for _ in range(6)]
        _queue(store, config, SAMPLE[2:])  # a new report arrives
        after = _run(url, qb)
        states = _states(store)
    assert [r.stopped for r in refused] == ["error"] * 6
    assert after.stopped == "done", after
    assert states["R00Bob1"] == ["posted"]  # the other reports go on ...
    assert states["R00Ann1"] == ["in_doubt"]  # ... while the unchecked one is never written blindly
    assert len([b for b in qb.bills() if b.ref_number == "R00Ann1"]) == 1
