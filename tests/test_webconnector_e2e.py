"""The Web Connector driver against the real server over HTTP, with the QuickBooks simulator behind it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults, WebConnector
from mlconnector.soap.server import RunningServer, make_wsgi_app, running_server
from mlconnector.soap.session import QbwcService
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

from .qbwc_support import PASSWORD, USER, Clock, ListWork, settings

pytestmark = pytest.mark.slow


def bill_request(ref: str, message_set_id: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><?qbxml version="13.0"?><QBXML>'
        f'<QBXMLMsgsRq onError="stopOnError" newMessageSetID="{message_set_id}">'
        f'<BillAddRq requestID="{ref}"><BillAdd><VendorRef><FullName>Ann Smith</FullName></VendorRef>'
        f"<TxnDate>2026-03-30</TxnDate><RefNumber>{ref}</RefNumber><ExpenseLineAdd><AccountRef>"
        "<FullName>Travel Expense</FullName></AccountRef><Amount>12.50</Amount><Memo>Taxi</Memo></ExpenseLineAdd>"
        "</BillAdd></BillAddRq></QBXMLMsgsRq></QBXML>"
    )


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


@contextmanager
def server(path: Path, work: ListWork, clock: Clock | None = None) -> Iterator[tuple[RunningServer, Store]]:
    store = Store.open(path, now=clock) if clock else Store.open(path)
    try:
        with running_server(make_wsgi_app(lambda: QbwcService(store, work, settings()))) as srv:
            yield srv, store
    finally:
        store.close()


def connector(srv: RunningServer, qb: QuickBooksSimulator, **options: object) -> WebConnector:
    return WebConnector(srv.soap_url, USER, PASSWORD, quickbooks=qb.process_request,
                        hcp_response=qb.hcp_response(), **options)  # type: ignore[arg-type]


def test_a_run_posts_every_queued_request_once_in_qbwc_call_order(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    work = ListWork([bill_request(f"R{n}", f"mlc-{n}") for n in range(3)])
    with server(tmp_path / "state.db", work) as (srv, store):
        summary = connector(srv, qb).run()
    assert summary.stopped == "done" and summary.round_trips == 3 and summary.progress == [33, 66, 100]
    assert summary.calls == ["serverVersion", "clientVersion", "authenticate"] + [
        "sendRequestXML", "receiveResponseXML"] * 3 + ["closeConnection"]
    assert summary.server_version.startswith("ml-connector") and summary.client_version_answer == ""
    assert [t.ref_number for t in qb.bills()] == ["R0", "R1", "R2"]
    assert work.hcp[0] is not None and "HostQueryRs" in work.hcp[0] and work.hcp[1:] == [None, None]
    assert summary.close_message == "ml-connector: 3 request(s) sent, 3 answered."


def test_an_answer_lost_after_quickbooks_applied_it_and_a_restart_still_post_exactly_once(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    work = ListWork([bill_request(f"R{n}", f"mlc-{n}") for n in range(3)])
    clock = Clock()
    with server(tmp_path / "state.db", work, clock) as (srv, _):
        crashed = connector(srv, qb).run(Faults(drop_response_on=2))
    assert crashed.stopped == "crashed" and len(qb.bills()) == 2
    with server(tmp_path / "state.db", work, clock) as (srv, store):  # a restarted server, same state file
        assert connector(srv, qb).run().stopped == "busy"  # the answer might still come
        clock.advance(minutes=10)
        summary = connector(srv, qb).run()
        lost = [r.detail for r in store.audit.rows(event=AuditEvent.SESSION_ERROR)]
    assert work.lost == [crashed.ticket]
    assert any("lost" in str(d.get("problem")) for d in lost)
    assert summary.stopped == "done"
    assert sorted(t.ref_number for t in qb.bills()) == ["R0", "R1", "R2"]  # R1 was replayed, not re-added


def test_a_parse_failure_stops_the_session_with_the_reason_and_the_next_run_goes_on(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    broken = bill_request("R1", "mlc-1").replace("<TxnDate>2026-03-30</TxnDate><RefNumber>R1</RefNumber>",
                                                 "<RefNumber>R1</RefNumber><TxnDate>2026-03-30</TxnDate>")
    work = ListWork([bill_request("R0", "mlc-0"), broken, bill_request("R2", "mlc-2")])
    with server(tmp_path / "state.db", work) as (srv, _):
        summary = connector(srv, qb).run()
        assert summary.stopped == "error" and summary.round_trips == 2
        assert "0x80040400" in (summary.last_error or "") and "a bug: send the log file" in (summary.last_error or "")
        assert "1 refused by QuickBooks" in (summary.close_message or "")
        following = connector(srv, qb).run()
    assert following.stopped == "done"
    assert [f[1] for f in work.failures] == ["0x80040400"]
    assert [t.ref_number for t in qb.bills()] == ["R0", "R2"]


def test_an_injected_hresult_reaches_handle_failure(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    work = ListWork([bill_request("R0", "mlc-0"), bill_request("R1", "mlc-1")])
    with server(tmp_path / "state.db", work) as (srv, _):
        summary = connector(srv, qb).run(Faults(hresult_on=1))
        assert summary.stopped == "error" and len(work.failures) == 1
        assert connector(srv, qb).run().stopped == "done"
    assert [t.ref_number for t in qb.bills()] == ["R1"]


def test_connection_error_ends_the_run_and_the_next_run_is_not_busy(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    work = ListWork([bill_request("R0", "mlc-0")])
    with server(tmp_path / "state.db", work) as (srv, store):
        first = connector(srv, qb).run(Faults(connection_error=("0x80040408", "Could not start QuickBooks.")))
        second = connector(srv, qb).run()
        errors = [r.detail for r in store.audit.rows(event=AuditEvent.SESSION_ERROR)]
    assert first.stopped == "connection_error" and first.calls[-1] == "connectionError"
    assert errors[0]["hresult"] == "0x80040408"
    assert second.stopped == "done" and len(qb.bills()) == 1


def test_no_work_and_bad_password_end_with_close_connection(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    with server(tmp_path / "state.db", ListWork()) as (srv, _):
        idle = connector(srv, qb).run()
        refused = WebConnector(srv.soap_url, USER, "wrong").run()
    assert (idle.auth_status, idle.stopped, idle.calls[-1]) == ("none", "none", "closeConnection")
    assert idle.close_message == "ml-connector: nothing to post."
    assert refused.close_message and "login refused" in refused.close_message
    assert (refused.auth_status, refused.stopped) == ("nvu", "nvu") and qb.requests == []


def test_a_session_stopped_by_the_work_shows_getlasterror(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    work = ListWork([bill_request("R0", "mlc-0"), bill_request("R1", "mlc-1")])
    work.handle_response = lambda ticket, response: -1  # type: ignore[method-assign]
    with server(tmp_path / "state.db", work) as (srv, _):
        summary = connector(srv, qb).run()
    assert summary.stopped == "error" and summary.calls[-2:] == ["getLastError", "closeConnection"]
    assert "stopped this session" in (summary.last_error or "")
