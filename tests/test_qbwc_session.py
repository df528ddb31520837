"""The Web Connector protocol in plain Python: logins, tickets, the call order, errors (no SOAP here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from mlconnector.errors import QbwcSessionError
from mlconnector.soap.session import (
    MAX_NOOPS,
    NOOP,
    QbwcService,
    SessionState,
    choose_qbxml_version,
)
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

from .qbwc_support import COMPANY, PASSWORD, USER, Clock, ListWork, settings

BILL = "<?xml version=\"1.0\"?><?qbxml version=\"13.0\"?><QBXML><QBXMLMsgsRq onError=\"stopOnError\"/></QBXML>"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[Store]:
    s = Store.memory(now=clock)
    yield s
    s.close()


def service(db: Store, work: ListWork, clock: Clock, **overrides: object) -> QbwcService:
    return QbwcService(db, work, settings(**overrides), now=clock)


def events(db: Store, event: AuditEvent) -> list[dict[str, object]]:
    return [r.detail for r in db.audit.rows(event=event)]


def test_login_with_work_returns_a_ticket_and_the_company_file(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL]), clock)
    ticket, company = svc.authenticate(USER, PASSWORD)
    assert len(ticket) == 36 and company == COMPANY
    assert svc.session(ticket).state is SessionState.OPEN  # type: ignore[union-attr]
    assert events(db, AuditEvent.SESSION_OPENED)[0]["user"] == USER


def test_tickets_are_random(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL]), clock)
    first = svc.authenticate(USER, PASSWORD)[0]
    svc.close_connection(first)
    assert svc.authenticate(USER, PASSWORD)[0] != first


def test_login_without_work_answers_none(db: Store, clock: Clock) -> None:
    assert service(db, ListWork(), clock).authenticate(USER, PASSWORD) == ["", "none"]


@pytest.mark.parametrize("user,password", [(USER, "wrong"), ("someone", PASSWORD), ("", "")])
def test_bad_credentials_answer_nvu_and_are_audited_without_the_password(
    db: Store, clock: Clock, user: str, password: str
) -> None:
    assert service(db, ListWork([BILL]), clock).authenticate(user, password) == ["", "nvu"]
    refused = events(db, AuditEvent.LOGIN_REFUSED)
    assert refused and refused[0]["reason"] == "wrong user name or password"
    assert PASSWORD not in str([r.as_dict() for r in db.audit.rows()])


def test_five_failures_in_five_minutes_lock_the_user_out_even_with_the_right_password(
    db: Store, clock: Clock
) -> None:
    svc = service(db, ListWork([BILL]), clock)
    for _ in range(5):
        assert svc.authenticate(USER, "guess") == ["", "nvu"]
        clock.advance(seconds=30)
    assert svc.authenticate(USER, PASSWORD) == ["", "nvu"]
    assert str(events(db, AuditEvent.LOGIN_REFUSED)[-1]["reason"]).startswith("too many failed attempts")
    clock.advance(minutes=16)
    assert svc.authenticate(USER, PASSWORD)[1] == COMPANY


def test_a_successful_login_resets_the_failure_count(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL, BILL]), clock)
    for _ in range(4):
        svc.authenticate(USER, "guess")
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.close_connection(ticket)
    for _ in range(4):
        svc.authenticate(USER, "guess")
    assert svc.authenticate(USER, PASSWORD)[1] == COMPANY


def test_a_second_login_while_a_request_is_inside_quickbooks_is_busy_until_the_takeover(
    db: Store, clock: Clock
) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    old = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(old, "", COMPANY, "US", 13, 0)
    clock.advance(minutes=9, seconds=59)
    assert svc.authenticate(USER, PASSWORD) == ["", "busy"]
    assert work.lost == []  # QuickBooks may still answer: nothing is given up
    busy = events(db, AuditEvent.SESSION_ERROR)[-1]
    assert busy["answer"] == "busy" and busy["takeover_at"] == "2026-03-30T09:10:00+00:00"
    clock.advance(seconds=1)
    new = svc.authenticate(USER, PASSWORD)[0]
    assert new and work.lost == [old]
    assert svc.session(old).state is SessionState.LOST  # type: ignore[union-attr]


def test_the_takeover_window_is_a_setting(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = QbwcService(db, work, settings(takeover_after=dt.timedelta(minutes=2)), now=clock)
    old = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(old, "", COMPANY, "US", 13, 0)
    clock.advance(minutes=1)
    assert svc.authenticate(USER, PASSWORD) == ["", "busy"]
    clock.advance(minutes=1)
    assert svc.authenticate(USER, PASSWORD)[0]


def test_a_second_login_while_a_session_has_nothing_outstanding_replaces_it_at_once(
    db: Store, clock: Clock
) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    old = svc.authenticate(USER, PASSWORD)[0]  # e.g. serve restarted between calls
    clock.advance(seconds=5)
    new = svc.authenticate(USER, PASSWORD)[0]
    assert new and new != old and work.lost == []
    assert svc.session(old).state is SessionState.CLOSED  # type: ignore[union-attr]
    assert svc.send_request_xml(old, "", COMPANY, "US", 13, 0) == ""  # the old ticket stops working
    assert svc.send_request_xml(new, "", COMPANY, "US", 13, 0) == BILL


def test_an_idle_session_expires_after_30_minutes_and_no_longer_makes_logins_busy(
    db: Store, clock: Clock
) -> None:
    svc = service(db, ListWork([BILL]), clock)
    old = svc.authenticate(USER, PASSWORD)[0]
    clock.advance(minutes=31)
    new = svc.authenticate(USER, PASSWORD)[0]
    assert new and new != old
    assert svc.session(old).state is SessionState.EXPIRED  # type: ignore[union-attr]


def test_a_stale_ticket_is_refused_clearly(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    clock.advance(minutes=31)
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == ""
    assert "expired" in svc.get_last_error(ticket)
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") < 0
    assert work.calls == ["has_work"]  # nothing reached the work after expiry


def test_an_unknown_ticket_is_refused_without_a_crash(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL]), clock)
    assert svc.send_request_xml("forged", "", COMPANY, "US", 13, 0) == ""
    assert svc.receive_response_xml("forged", "<QBXML/>", "", "") == -1
    assert "does not know this session" in svc.get_last_error("forged")
    assert svc.close_connection("forged") == "ml-connector: session already ended."
    assert svc.connection_error("forged", "0x80040408", "Could not start QuickBooks.") == "done"


def test_the_full_loop_hands_out_each_request_and_reports_progress(db: Store, clock: Clock) -> None:
    work = ListWork([BILL, BILL + " ", BILL + "  "])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    progress = []
    for n in range(3):
        request = svc.send_request_xml(ticket, "<HCP/>" if n == 0 else "", COMPANY, "US", 13, 0)
        assert request.startswith("<?xml")
        assert svc.session(ticket).state is SessionState.AWAITING  # type: ignore[union-attr]
        progress.append(svc.receive_response_xml(ticket, f"<QBXML>{n}</QBXML>", "", ""))
    assert progress == [33, 66, 100]
    assert work.hcp == ["<HCP/>", None, None]
    assert svc.close_connection(ticket) == "ml-connector: 3 request(s) sent, 3 answered."
    assert svc.session(ticket).state is SessionState.CLOSED  # type: ignore[union-attr]
    assert events(db, AuditEvent.SESSION_CLOSED)[0]["requests"] == 3


@pytest.mark.parametrize(
    "configured,major,minor,expected",
    [("13.0", 13, 0, "13.0"), ("16.0", 13, 0, "13.0"), ("16.0", 16, 0, "16.0"), ("13.0", 16, 0, "13.0"),
     ("16.0", 14, 0, "13.0"), ("16.0", 0, 0, "16.0"), ("13.0", 12, 0, None)],
)
def test_the_qbxml_version_never_exceeds_what_the_web_connector_reports(
    configured: str, major: int, minor: int, expected: str | None
) -> None:
    assert choose_qbxml_version(configured, major, minor) == expected


def test_send_request_uses_the_reported_version(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock, max_qbxml_version="16.0")
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert work.versions == ["13.0"]


def test_a_quickbooks_too_old_for_us_stops_the_session_with_a_reason(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL]), clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 12, 0) == ""
    assert "QuickBooks 2014 or newer" in svc.get_last_error(ticket)


def test_the_wrong_company_file_open_is_refused_with_the_fix(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    assert svc.send_request_xml(ticket, "", r"C:\Other.QBW", "US", 13, 0) == ""
    assert "Open the right company file" in svc.get_last_error(ticket)
    assert "next_request" not in work.calls


def test_empty_send_then_getlasterror_says_noop_only_while_work_may_still_come(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    work.queue.clear()
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == ""
    assert svc.get_last_error(ticket) == "ml-connector has nothing more to send."
    work.queue.append(BILL)
    original = work.next_request
    work.next_request = lambda *a: None  # type: ignore[method-assign]
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == ""
    assert svc.get_last_error(ticket) == NOOP
    for _ in range(MAX_NOOPS):
        svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert svc.get_last_error(ticket) != NOOP  # never polls forever
    work.next_request = original  # type: ignore[method-assign]


def test_an_hresult_stops_the_session_and_getlasterror_names_it_and_the_fix(db: Store, clock: Clock) -> None:
    work = ListWork([BILL, BILL + " "])
    work.failure_note = lambda ticket: "2 report(s) will be tried again."  # type: ignore[method-assign]
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert svc.receive_response_xml(ticket, "", "0x80040400", "QuickBooks found an error when parsing") == -1
    assert work.failures == [(ticket, "0x80040400", "QuickBooks found an error when parsing")]
    error = svc.get_last_error(ticket)
    assert error == ("QuickBooks could not process the request ml-connector sent (0x80040400: QuickBooks found an "
                     "error when parsing): QuickBooks could not parse the request ml-connector sent (a bug: send the "
                     "log file). 2 report(s) will be tried again.")
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == ""  # nothing more in this session
    audit = events(db, AuditEvent.SESSION_ERROR)
    assert audit[0]["hresult"] == "0x80040400" and "bug" in str(audit[0]["hint"])
    assert audit[-1]["problem"] == error


def test_negative_progress_stops_the_session_and_getlasterror_explains(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    work.handle_response = lambda ticket, response: -3  # type: ignore[method-assign]
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") == -3
    assert "code -3" in svc.get_last_error(ticket)


def test_work_can_stop_the_session_with_a_sentence(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])

    def refuse(ticket: str, response: str) -> int:
        raise QbwcSessionError("Account Travel is inactive in QuickBooks: reactivate it.")

    work.handle_response = refuse  # type: ignore[method-assign]
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") == -1
    assert svc.get_last_error(ticket) == "Account Travel is inactive in QuickBooks: reactivate it."


def test_a_bug_in_the_work_is_logged_audited_and_answered_not_raised(
    db: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    work.raise_in = "next_request"
    assert svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0) == ""
    assert "internal error in send_request_xml" in svc.get_last_error(ticket)
    assert "boom in next_request" in caplog.text
    assert events(db, AuditEvent.SESSION_ERROR)[-1]["error"] == "RuntimeError"


def test_a_bug_while_handling_a_response_leaves_its_work_in_doubt(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    work.raise_in = "handle_response"
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") == -1
    assert work.lost == [ticket]


def test_a_bug_in_authenticate_is_audited_and_raised_as_a_session_error(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    work.raise_in = "has_work"
    with pytest.raises(QbwcSessionError, match="could not check this login"):
        service(db, work, clock).authenticate(USER, PASSWORD)
    assert events(db, AuditEvent.SESSION_ERROR)[-1]["call"] == "authenticate"


def test_a_login_while_an_answer_is_outstanding_marks_it_lost_before_anything_else(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    old = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(old, "", COMPANY, "US", 13, 0)
    work.calls.clear()
    clock.advance(minutes=10)
    new, company = svc.authenticate(USER, PASSWORD)
    assert work.calls[:2] == ["on_session_lost", "has_work"]
    assert work.lost == [old] and new and company == COMPANY
    assert svc.session(old).state is SessionState.LOST  # type: ignore[union-attr]
    assert svc.send_request_xml(new, "", COMPANY, "US", 13, 0) == BILL
    # The answer comes after all: handed to the work in full, and the Web Connector told so.
    assert svc.receive_response_xml(old, "<QBXML/>", "", "") == 100
    assert work.late == [(old, "<QBXML/>")]
    assert svc.close_connection(old) == "late answer recorded"


def test_an_answer_outstanding_at_expiry_or_close_is_lost_too(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    svc.close_connection(ticket)
    assert work.lost == [ticket]
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    clock.advance(minutes=45)
    svc.get_last_error(ticket)
    assert svc.authenticate(USER, PASSWORD)[0]
    assert work.lost[-1] == ticket


def test_connection_error_answers_done_and_records_why(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork([BILL]), clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    assert svc.connection_error(ticket, "0x80040408", "Could not start QuickBooks.") == "done"
    detail = events(db, AuditEvent.SESSION_ERROR)[-1]
    assert detail["hresult"] == "0x80040408" and "open QuickBooks" in str(detail["hint"])
    session = svc.session(ticket)
    assert session is not None and session.state is SessionState.CLOSED
    assert "could not connect to QuickBooks" in svc.get_last_error(ticket)
    assert svc.authenticate(USER, PASSWORD)[1] == COMPANY  # not busy afterwards


def test_close_connection_after_none_nvu_or_busy_says_why_nothing_ran(db: Store, clock: Clock) -> None:
    work = ListWork()
    svc = service(db, work, clock)
    svc.authenticate(USER, PASSWORD)
    assert svc.close_connection("") == "ml-connector: nothing to post."
    svc.authenticate(USER, "wrong")
    assert "login refused" in svc.close_connection("")
    work.queue.append(BILL)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    svc.authenticate(USER, PASSWORD)
    assert "still running" in svc.close_connection("")


def test_client_version_warns_on_an_old_web_connector_only(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork(), clock)
    assert svc.client_version("2.3.0.215") == ""
    assert svc.client_version("2.1.0.30") == ""
    assert svc.client_version("") == ""
    assert svc.client_version("2.0.1.30").startswith("W:")


def test_interactive_methods_answer_harmlessly(db: Store, clock: Clock) -> None:
    svc = service(db, ListWork(), clock)
    assert svc.get_interactive_url("t", "s") == ""
    assert svc.interactive_done("t") == "Done"
    assert "interactive" in svc.interactive_rejected("t", "User declined")


def test_sessions_survive_a_restart(tmp_path: object, clock: Clock) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "state.db"
    work = ListWork([BILL])
    first = Store.open(path, now=clock)
    ticket = QbwcService(first, work, settings(), now=clock).authenticate(USER, PASSWORD)[0]
    QbwcService(first, work, settings(), now=clock).send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    first.close()
    second = Store.open(path, now=clock)
    svc = QbwcService(second, work, settings(), now=clock)
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") == 100
    second.close()


def test_a_refusal_from_the_work_undoes_its_own_writes_but_keeps_the_session_record(db: Store, clock: Clock) -> None:
    work = ListWork([BILL])

    def write_then_refuse(ticket: str, response: str) -> int:
        db.set_setting("work.half_done", "yes")
        raise QbwcSessionError("Stopped on purpose.")

    work.handle_response = write_then_refuse  # type: ignore[method-assign]
    svc = service(db, work, clock)
    ticket = svc.authenticate(USER, PASSWORD)[0]
    svc.send_request_xml(ticket, "", COMPANY, "US", 13, 0)
    assert svc.receive_response_xml(ticket, "<QBXML/>", "", "") == -1
    assert db.get_setting("work.half_done") is None
    assert svc.session(ticket).state is SessionState.FAILED  # type: ignore[union-attr]
    assert svc.session(ticket).detail["responses"] == 1  # type: ignore[union-attr]
