"""The QuickBooks Web Connector protocol as plain Python: sessions, tickets, logins, and the call order.

QBWC calls one method per SOAP request (QBWC.md §2-§3). :class:`QbwcService` answers each of them
with plain values; ``service.py`` only translates SOAP to and from these calls. What to send to
QuickBooks and what to do with its answers is not decided here: that is the injected :class:`Work`.

Sessions live in the ``qbwc_sessions`` table so that a restarted server still knows which request was
in flight. One session per company file at a time::

    authenticate ──► OPEN ──sendRequestXML (qbXML)──► AWAITING ──receiveResponseXML──► OPEN | DONE | FAILED
                      │  └─sendRequestXML ("")──► OPEN (getLastError: NoOp or a message)
                      └─connectionError──► CLOSED        any ──closeConnection──► CLOSED
    new authenticate for the company while AWAITING ──► "busy" for takeover_after (QuickBooks may still
        be working on the request), then ──► LOST (Work.on_session_lost)
    new authenticate while OPEN/DONE/FAILED (nothing outstanding) ──► CLOSED at once ("replaced"): a
        restarted server or Web Connector never waits for a session that cannot write anything
    no call for 30 minutes ──► EXPIRED (AWAITING first goes through Work.on_session_lost)
    receiveResponseXML on a LOST/EXPIRED session ──► Work.handle_late_response (recorded, never dropped)

Every public method returns a value QBWC understands; an unexpected exception is logged, audited as
``session_error`` and turned into the protocol's error answer (``""``/``-1`` with the reason kept for
``getLastError``). Only ``authenticate`` re-raises (as :class:`QbwcSessionError`), because QBWC shows a
failing authenticate as QBWC1012 and there is no status string that could say "internal error".
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from mlconnector import __version__
from mlconnector.store.audit import AuditEvent
from mlconnector.errors import MlConnectorError, QbwcSessionError
from mlconnector.passwords import verify_password
from mlconnector.redact import ticket_ref as _ticket_ref
from mlconnector.store import Store

log = logging.getLogger("mlconnector.soap.session")

ACTOR = "serve"
NOOP = "NoOp"

# The qbXML versions ml-connector can write, lowest first (13.0 = QuickBooks 2014 and later).
SUPPORTED_QBXML_VERSIONS = ("13.0", "16.0")

# Below 2.1 we warn (W:) but never refuse: 2.1.0.30 is the oldest Web Connector in the field logs that
# QBWC.md quotes, older ones date from the 2009 Programmer's Guide and were never seen next to a
# QuickBooks that speaks qbXML 13.0 (the lowest we write), and the calls we use did not change since.
MIN_CLIENT_VERSION = (2, 1)

# An answer we never saw the end of stays in doubt; QBWC itself gives up on a call after ~100 s, so
# 30 idle minutes (consolibyte's QUICKBOOKS_TIMEOUT) means the Web Connector is not coming back.
SESSION_IDLE_TIMEOUT = dt.timedelta(minutes=30)

# While a session has a request inside QuickBooks, a new login is "busy" this long: a slow QuickBooks (a
# large batch) or a second Web Connector may still deliver that answer, and writing the same postings in
# the meantime would duplicate them. ``[qbwc] takeover_after_minutes`` sets it.
TAKEOVER_AFTER = dt.timedelta(minutes=10)

# After this many consecutive "NoOp" answers the session ends instead of polling forever.
MAX_NOOPS = 12

# closeConnection("") follows an authenticate that opened no session; QBWC shows this in its status column.
CLOSE_TEXT_WITHOUT_SESSION = {
    "none": "ml-connector: nothing to post.",
    "nvu": "ml-connector: login refused; check the user name and password entered in the Web Connector.",
    "busy": "ml-connector: another update of this company file is still running; it will be tried again.",
}

HRESULT_HINTS = {
    "0x80040400": "QuickBooks could not parse the request ml-connector sent (a bug: send the log file)",
    "0x80040401": "the Web Connector could not reach QuickBooks: is QuickBooks installed and the company file available?",
    "0x80040402": "QuickBooks hit an unexpected error: see qbsdklog.txt on the QuickBooks machine",
    "0x80040408": "QuickBooks could not be started: open QuickBooks and the company file, then run the update again",
    "0x80040416": "QuickBooks is not running and no company file was given: open the company file in QuickBooks",
    "0x80040420": "the QuickBooks user denied access: in QuickBooks, Edit > Preferences > Integrated Applications, allow ml-connector",
}


class SessionState(StrEnum):
    """Where one Web Connector session stands."""

    OPEN = "open"  # authenticated; no request in flight
    AWAITING = "awaiting_response"  # a qbXML request was handed out; its answer has not come back
    DONE = "done"  # all work finished (progress 100); closeConnection will follow
    FAILED = "failed"  # the session cannot go on; getLastError explains, closeConnection follows
    CLOSED = "closed"  # closeConnection or connectionError ended it
    LOST = "lost"  # a new login came while we still expected an answer: that answer was lost
    EXPIRED = "expired"  # nothing heard for SESSION_IDLE_TIMEOUT

    @property
    def is_live(self) -> bool:
        """True while the Web Connector may still call with this ticket."""
        return self in LIVE_STATES


LIVE_STATES = frozenset({SessionState.OPEN, SessionState.AWAITING, SessionState.DONE, SessionState.FAILED})


class Work(Protocol):
    """What a session does with QuickBooks: the lead's posting logic implements this.

    Call order within one session (``ticket`` identifies it; the server makes these calls one at a
    time, never concurrently):

    1. ``authenticate``: ``on_session_lost(old_ticket)`` first, for every earlier session of the same
       company that was still awaiting an answer; then ``has_work()`` decides ``"none"`` vs a ticket.
    2. ``sendRequestXML``: ``next_request(ticket, version, hcp)``; ``hcp`` is QBWC's
       Host/Company/Preferences response on the first call of a session, else ``None``. Return one
       complete qbXML request (stored by you before returning) or ``None`` when there is nothing
       (more) to send; then ``has_work()`` decides whether QBWC polls again (``NoOp``) or stops.
    3. ``receiveResponseXML``: ``handle_response(ticket, response)`` with QuickBooks' qbXML answer,
       or ``handle_failure(ticket, hresult, message)`` when QuickBooks could not process the request
       at all. Both return progress: 0-99 more to do, 100 finished, negative only when the session
       cannot go on. Raise :class:`QbwcSessionError` with a sentence for a person to stop the session
       with that sentence as the Web Connector's error message.
       After ``handle_failure`` the session stops; ``failure_note(ticket)`` says what the failure
       means for the reports (retried, or failed after repeated identical failures).
    4. ``on_session_lost(ticket)``: the answer to the request handed out under ``ticket`` is not
       expected any more (a takeover, connectionError, closeConnection or expiry while awaiting it).
       Mark that request's work in doubt; the next session must ask QuickBooks before writing.
    5. ``handle_late_response(ticket, response)``: the answer came after all (the session was given
       up); record it. Returns a sentence for the Web Connector, or None if there was nothing to answer.
    6. ``summary(ticket)`` at closeConnection: one line for the Web Connector's status column, or
       ``None`` for the session's own counters.
    """

    def has_work(self) -> bool:
        """True when something is queued, in doubt or otherwise needs QuickBooks."""
        ...

    def next_request(self, ticket: str, qbxml_version: str, hcp_response: str | None) -> str | None:
        """The next qbXML request text for QuickBooks, or None when there is nothing to send."""
        ...

    def handle_response(self, ticket: str, response: str) -> int:
        """Record QuickBooks' answer to the last request; returns progress (0-99, 100, or negative)."""
        ...

    def handle_failure(self, ticket: str, hresult: str, message: str) -> int:
        """QuickBooks refused the whole last request (parse failure); returns progress like handle_response."""
        ...

    def failure_note(self, ticket: str) -> str | None:
        """After handle_failure: what it means for the reports, one sentence (or None)."""
        ...

    def on_session_lost(self, ticket: str) -> None:
        """The answer to the request in flight under ``ticket`` is lost: mark its work in doubt."""
        ...

    def handle_late_response(self, ticket: str, response: str) -> str | None:
        """An answer for a session already given up: record it; a sentence, or None when nothing was awaited."""
        ...

    def summary(self, ticket: str) -> str | None:
        """A one-line result for the Web Connector's status column, or None for the default."""
        ...


@dataclass(frozen=True)
class SessionSettings:
    """What the protocol needs from the configuration (session.py does not read config.toml)."""

    username: str
    password_hash: str
    company_file: str = ""
    max_qbxml_version: str = "13.0"
    idle_timeout: dt.timedelta = SESSION_IDLE_TIMEOUT
    takeover_after: dt.timedelta = TAKEOVER_AFTER
    max_failed_logins: int = 5
    failed_login_window: dt.timedelta = dt.timedelta(minutes=5)
    lockout: dt.timedelta = dt.timedelta(minutes=15)


@dataclass
class Session:
    """One row of ``qbwc_sessions``; ``detail`` holds counters and protocol bookkeeping."""

    ticket: str
    username: str
    company_file: str
    state: SessionState
    created_at: dt.datetime
    last_seen_at: dt.datetime
    qbxml_version: str | None = None
    last_error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _parse_version(text: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", text or "")
    return tuple(int(p) for p in parts) if parts else None


def choose_qbxml_version(configured: str, major: int | None, minor: int | None) -> str | None:
    """The highest version we write that is ≤ the configured one and ≤ what QBWC reports.

    ``major`` 0/None means QBWC did not say; then the configured version is used. None when the
    Web Connector's QuickBooks is older than every version we can write.
    """
    ceiling = _parse_version(configured) or (13, 0)
    if major:
        ceiling = min(ceiling, (major, minor or 0))
    fitting = [v for v in SUPPORTED_QBXML_VERSIONS if (_parse_version(v) or (0,)) <= ceiling]
    return fitting[-1] if fitting else None


T = TypeVar("T")


def _never_raises(
    fallback: Callable[..., T], *, takes_ticket: bool = True
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn an unexpected exception into a logged, audited session error and the method's error answer.

    ``fallback(self, ticket, message)`` produces the answer; the message is what getLastError shows.
    ``takes_ticket``: the method's first argument is the ticket.
    """

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: QbwcService, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                ticket = str(args[0]) if takes_ticket and args and isinstance(args[0], str) else ""
                text = self._record_exception(method.__name__, ticket, exc)
                return fallback(self, ticket, text)

        return wrapper

    return decorate


class QbwcService:
    """The eleven Web Connector calls over one state file.

    Args:
        store: the state file (sessions, settings, audit).
        work: what the sessions do (see :class:`Work`).
        settings: login, company file and limits.
        now: the clock; defaults to the store's.
    """

    def __init__(
        self,
        store: Store,
        work: Work,
        settings: SessionSettings,
        now: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.store = store
        self.work = work
        self.settings = settings
        self.now = now or store.now
        # What the last ticket-less authenticate answered, for the closeConnection("") that follows it.
        self._last_refusal = ""

    # ------------------------------------------------------------------ informational calls

    def server_version(self) -> str:
        """Shown in QBWC's "More Information"."""
        return f"ml-connector {__version__}"

    @_never_raises(lambda self, ticket, message: "", takes_ticket=False)
    def client_version(self, version: str) -> str:
        """``""`` to go on; ``W:`` warning on a Web Connector older than :data:`MIN_CLIENT_VERSION`."""
        parsed = _parse_version(version or "")
        if parsed is not None and parsed[:2] < MIN_CLIENT_VERSION:
            wanted = ".".join(str(p) for p in MIN_CLIENT_VERSION)
            return (
                f"W:This Web Connector ({version}) is older than {wanted}, the oldest ml-connector is tested with. "
                "Install the current QuickBooks Web Connector from Intuit, or press OK to try anyway."
            )
        return ""

    # ----------------------------------------------------------------------- authenticate

    def authenticate(self, username: str, password: str) -> list[str]:
        """``[ticket, company]`` when there is work, ``["", "none"]`` when not, ``["", "nvu"]``, ``["", "busy"]``.

        Raises:
            QbwcSessionError: an unexpected failure (already logged and audited).
        """
        username = username or ""
        try:
            return self._authenticate(username, password or "")
        except Exception as exc:
            self._record_exception("authenticate", "", exc)
            raise QbwcSessionError(
                "ml-connector could not check this login; see ml-connector's log file"
            ) from exc

    def _authenticate(self, username: str, password: str) -> list[str]:
        answer = self._authenticate_answer(username, password)
        if not answer[0]:
            self._last_refusal = answer[1]
        return answer

    def _authenticate_answer(self, username: str, password: str) -> list[str]:
        now = self.now()
        if self._locked_out(username, now):
            self._refuse_login(username, "too many failed attempts; wait and try again", now, count=False)
            return ["", "nvu"]
        # Both checks always run, so a wrong user name costs as much time as a wrong password.
        user_ok = hmac.compare_digest(username.encode("utf-8"), self.settings.username.encode("utf-8"))
        password_ok = verify_password(password, self.settings.password_hash) if self.settings.password_hash else False
        if not (user_ok and password_ok):
            self._refuse_login(username, "wrong user name or password", now, count=True)
            return ["", "nvu"]
        company = self.settings.company_file
        with self.store.atomic():
            self._clear_failures(username)
            self.store.set_setting("qbwc.last_contact", now.isoformat(timespec="milliseconds"))
            busy = self._settle_earlier_sessions(company, now)
            if busy is not None:
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"call": "authenticate", "answer": "busy", "company_file": company,
                            "other_session_since": busy.created_at.isoformat(timespec="seconds"),
                            "awaiting_since": busy.last_seen_at.isoformat(timespec="seconds"),
                            "takeover_at": (busy.last_seen_at + self.settings.takeover_after).isoformat(
                                timespec="seconds")},
                )
                return ["", "busy"]
            if not self.work.has_work():
                log.debug("authenticate: nothing to do")
                return ["", "none"]
            ticket = str(uuid.uuid4())
            session = Session(ticket, username, company, SessionState.OPEN, now, now,
                              detail={"requests": 0, "responses": 0, "failures": 0, "noops": 0, "progress": 0})
            self._insert(session)
            self.store.audit.append(
                AuditEvent.SESSION_OPENED, actor=ACTOR,
                detail={"session": _ticket_ref(ticket), "user": username, "company_file": company},
            )
        log.info("session %s opened for %s", _ticket_ref(ticket), company or "the open company file")
        return [ticket, company]

    def _settle_earlier_sessions(self, company: str, now: dt.datetime) -> Session | None:
        """End what a new login replaces; return a session that makes this login busy.

        Only a request still inside QuickBooks blocks a new login, and only for ``takeover_after``: its
        answer may yet come, and writing the same postings meanwhile would duplicate them. A session
        with nothing outstanding is ended at once, so a restart never waits for the idle timeout.
        """
        busy = None
        for old in self._live_sessions(company):
            if old.state is SessionState.AWAITING and now - old.last_seen_at < self.settings.takeover_after:
                busy = old
            elif old.state is SessionState.AWAITING:
                self.work.on_session_lost(old.ticket)
                old.detail["awaited"] = True  # its answer may still come: see _late
                self._end(old, SessionState.LOST, now, error=(
                    "a new Web Connector session took over after "
                    f"{_minutes(self.settings.takeover_after)} without QuickBooks' answer"))
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(old.ticket), "call": "authenticate",
                            "problem": "taken over: the answer to the last request was lost (or is late); its work is in doubt"},
                )
            elif now - old.last_seen_at >= self.settings.idle_timeout:
                self._end(old, SessionState.EXPIRED, now, error="no call from the Web Connector for 30 minutes")
            else:
                self._end(old, SessionState.CLOSED, now, error=(
                    "a newer Web Connector session replaced this one; it starts over at its next run"))
                self.store.audit.append(
                    AuditEvent.SESSION_CLOSED, actor=ACTOR,
                    detail={"session": _ticket_ref(old.ticket), "ended_as": old.state.value,
                            "summary": "replaced by a newer session (nothing was outstanding)"},
                )
        return busy

    # ---------------------------------------------------------------------- the work loop

    @_never_raises(lambda self, ticket, message: "")
    def send_request_xml(
        self,
        ticket: str,
        hcp_response: str,
        company_file_name: str,
        country: str,
        major_version: int | None,
        minor_version: int | None,
    ) -> str:
        """One qbXML request for QuickBooks, or ``""`` (then getLastError says NoOp or why)."""
        with self.store.atomic():
            session = self._session_for_call(ticket, "sendRequestXML")
            if session is None:
                return ""
            now = self.now()
            detail = session.detail
            if session.state is SessionState.AWAITING:
                # QBWC asks again without having answered: that answer is gone.
                self.work.on_session_lost(ticket)
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "call": "sendRequestXML",
                            "problem": "asked for a new request before answering the last one; its work is in doubt"},
                )
                session.state = SessionState.OPEN
            if session.state is not SessionState.OPEN:
                detail["after_empty"] = session.last_error or "ml-connector has nothing more to send in this session."
                self._save(session, now)
                return ""
            expected = self.settings.company_file
            if expected and company_file_name and _norm_path(expected) != _norm_path(company_file_name):
                return self._fail(session, now, (
                    f"QuickBooks has {company_file_name} open, but ml-connector posts to {expected}. "
                    "Open the right company file (or change quickbooks.company_file) and run the update again."
                ), result="")
            version = choose_qbxml_version(self.settings.max_qbxml_version, major_version, minor_version)
            if version is None:
                return self._fail(session, now, (
                    f"This QuickBooks supports qbXML only up to {major_version}.{minor_version or 0}; "
                    f"ml-connector needs {SUPPORTED_QBXML_VERSIONS[0]} (QuickBooks 2014 or newer)."
                ), result="")
            if "qbxml_major" not in detail:
                detail.update(qbxml_major=major_version, qbxml_minor=minor_version, country=country or "")
            session.qbxml_version = version
            first = not detail.get("hcp_seen")
            hcp = hcp_response if (hcp_response and first) else None
            if hcp_response:
                detail["hcp_seen"] = True
            try:
                with self.store.atomic():  # a savepoint: a refusal undoes the work's own writes
                    request = self.work.next_request(ticket, version, hcp)
            except QbwcSessionError as exc:
                return self._fail(session, now, exc.message, result="")
            if request:
                session.state = SessionState.AWAITING
                detail["requests"] = int(detail.get("requests", 0)) + 1
                detail["noops"] = 0
                detail.pop("after_empty", None)
                self._save(session, now)
                return request
            noops = int(detail.get("noops", 0)) + 1
            detail["noops"] = noops
            if noops <= MAX_NOOPS and self.work.has_work():
                detail["after_empty"] = NOOP
            else:
                detail["after_empty"] = (
                    "ml-connector has nothing more to send now; what is left waits for the next run."
                    if noops > MAX_NOOPS else "ml-connector has nothing more to send."
                )
            self._save(session, now)
            return ""

    @_never_raises(lambda self, ticket, message: -1)
    def receive_response_xml(self, ticket: str, response: str, hresult: str, message: str) -> int:
        """QuickBooks' answer (or its hresult) to the last request; returns progress for QBWC."""
        with self.store.atomic():
            session = self._session_for_call(ticket, "receiveResponseXML")
            if session is None:
                return self._late(ticket, response or "", hresult or "", message or "")
            now = self.now()
            if session.state is not SessionState.AWAITING:
                return self._fail(session, now, (
                    "ml-connector received an answer it was not waiting for; "
                    "the Web Connector will start a fresh session at its next run."
                ), result=-1)
            detail = session.detail
            detail["responses"] = int(detail.get("responses", 0)) + 1
            session.state = SessionState.OPEN
            if hresult:
                detail["failures"] = int(detail.get("failures", 0)) + 1
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "call": "receiveResponseXML",
                            "hresult": hresult, "message": message or "",
                            "hint": HRESULT_HINTS.get(hresult.lower(), "")},
                )
            try:
                with self.store.atomic():  # a savepoint: a refusal undoes the work's own writes
                    progress = self._deliver(ticket, response or "", hresult, message or "")
            except QbwcSessionError as exc:
                return self._fail(session, now, exc.message, result=-1)
            if hresult:
                # QuickBooks refused the whole message: stop, so the Web Connector shows why (getLastError).
                return self._fail(session, now, _hresult_text(hresult, message or "", self.work.failure_note(ticket)),
                                  result=-1)
            progress = int(progress)
            if progress < 0:
                return self._fail(session, now, (
                    f"ml-connector stopped this session (code {progress}); "
                    "see mlconnector status and the log file for the reason."
                ), result=progress)
            if progress >= 100:
                session.state = SessionState.DONE
                progress = 100
            detail["progress"] = progress
            self._save(session, now)
            return progress

    def _late(self, ticket: str, response: str, hresult: str, message: str) -> int:
        """An answer on a session that was given up: record it rather than drop it."""
        session = self._load(ticket)
        given_up = session is not None and session.state in (SessionState.LOST, SessionState.EXPIRED)
        if session is None or not given_up or not session.detail.get("awaited") or not response:
            if session is not None and hresult:
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "call": "receiveResponseXML", "hresult": hresult,
                            "message": message, "problem": "a refusal arrived after the session was given up"},
                )
            return -1
        with self.store.atomic():
            note = self.work.handle_late_response(ticket, response)
        if note is None:
            return -1
        session.detail["late_answer"] = note
        self._end(session, session.state, self.now(), error=session.last_error)
        log.warning("session %s: late answer recorded: %s", _ticket_ref(ticket), note)
        return 100  # the Web Connector then closes; closeConnection shows the note

    def _deliver(self, ticket: str, response: str, hresult: str, message: str) -> int:
        if hresult:
            return self.work.handle_failure(ticket, hresult, message)
        return self.work.handle_response(ticket, response)

    # ------------------------------------------------------------------- errors and endings

    @_never_raises(lambda self, ticket, message: str(message))
    def get_last_error(self, ticket: str) -> str:
        """``NoOp`` when QBWC should ask again in 5 s, else a sentence a person can act on."""
        with self.store.atomic():
            session = self._load(ticket)
            if session is None:
                return _unknown_ticket_text()
            pending = session.detail.get("after_empty")
            if session.state is SessionState.OPEN and pending:
                return str(pending)
            if session.last_error:
                return session.last_error
            if session.state is SessionState.EXPIRED:
                return "This session expired; the Web Connector will start a new one at its next run."
            return str(pending or "No error.")

    @_never_raises(lambda self, ticket, message: "done")
    def connection_error(self, ticket: str, hresult: str, message: str) -> str:
        """QBWC could not open QuickBooks: record why and stop (``"done"``)."""
        hint = HRESULT_HINTS.get((hresult or "").lower(), "")
        text = f"The Web Connector could not connect to QuickBooks ({hresult or 'no code'}: {message or 'no message'})"
        text += f": {hint}." if hint else "."
        with self.store.atomic():
            session = self._load(ticket)
            self.store.audit.append(
                AuditEvent.SESSION_ERROR, actor=ACTOR,
                detail={"session": _ticket_ref(ticket), "call": "connectionError", "hresult": hresult or "",
                        "message": message or "", "hint": hint},
            )
            if session is not None and session.state.is_live:
                if session.state is SessionState.AWAITING:
                    self.work.on_session_lost(ticket)
                self._end(session, SessionState.CLOSED, self.now(), error=text)
        log.warning("connectionError: %s", text)
        return "done"

    @_never_raises(lambda self, ticket, message: "ml-connector: the session ended with an error; see its log file.")
    def close_connection(self, ticket: str) -> str:
        """End the session; a one-line summary for QBWC's status column."""
        with self.store.atomic():
            session = self._load(ticket)
            if session is None:
                if ticket:
                    return "ml-connector: session already ended."
                return CLOSE_TEXT_WITHOUT_SESSION.get(self._last_refusal, CLOSE_TEXT_WITHOUT_SESSION["none"])
            if not session.state.is_live:
                if session.detail.get("late_answer"):
                    return str(session.detail["late_answer"])
                return f"ml-connector: session already ended ({session.state.value})."
            now = self.now()
            if session.state is SessionState.AWAITING:
                self.work.on_session_lost(ticket)
            summary = self.work.summary(ticket) or self._default_summary(session)
            previous = session.state
            self._end(session, SessionState.CLOSED, now, error=session.last_error)
            self.store.audit.append(
                AuditEvent.SESSION_CLOSED, actor=ACTOR,
                detail={"session": _ticket_ref(ticket), "ended_as": previous.value, "summary": summary,
                        **{k: session.detail.get(k, 0) for k in ("requests", "responses", "failures")}},
            )
        log.info("session %s closed: %s", _ticket_ref(ticket), summary)
        return summary

    # --------------------------------------------------- interactive mode (never requested)

    def get_interactive_url(self, ticket: str, session_id: str) -> str:
        """ml-connector never asks for interactive mode, so there is no page to open."""
        return ""

    def interactive_done(self, ticket: str) -> str:
        """Interactive mode is never started; tell QBWC it is finished."""
        return "Done"

    def interactive_rejected(self, ticket: str, reason: str) -> str:
        """Nothing depended on interactive mode."""
        return "ml-connector does not use interactive mode; nothing was changed."

    # -------------------------------------------------------------------------- internals

    def _default_summary(self, session: Session) -> str:
        d = session.detail
        text = f"ml-connector: {d.get('requests', 0)} request(s) sent, {d.get('responses', 0)} answered"
        if d.get("failures"):
            text += f", {d['failures']} refused by QuickBooks"
        if session.last_error:
            return f"{text}; stopped: {session.last_error}"
        return text + "."

    def _fail(self, session: Session, now: dt.datetime, text: str, *, result: T) -> T:
        session.state = SessionState.FAILED
        session.last_error = text
        session.detail.pop("after_empty", None)
        self._save(session, now)
        self.store.audit.append(
            AuditEvent.SESSION_ERROR, actor=ACTOR, detail={"session": _ticket_ref(session.ticket), "problem": text}
        )
        log.warning("session %s failed: %s", _ticket_ref(session.ticket), text)
        return result

    def _record_exception(self, call: str, ticket: str, exc: Exception) -> str:
        """Log and audit an unexpected error; keep it for getLastError; return the user-facing text."""
        if isinstance(exc, MlConnectorError):
            text = f"ml-connector could not finish {call}: {exc.message}"
        else:
            text = f"ml-connector hit an internal error in {call} ({type(exc).__name__}); see its log file."
        log.exception("%s failed for session %s", call, _ticket_ref(ticket))
        try:
            with self.store.atomic():
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "call": call, "error": type(exc).__name__,
                            "problem": text},
                )
                session = self._load(ticket) if ticket else None
                if session is not None and session.state.is_live:
                    if session.state is SessionState.AWAITING:
                        # Whatever QuickBooks did with the request in flight is now unknown.
                        self.work.on_session_lost(ticket)
                    session.state = SessionState.FAILED
                    session.last_error = text
                    session.detail.pop("after_empty", None)
                    self._save(session, self.now())
        except Exception:  # the state file itself is failing; the log line above is what remains
            log.exception("could not record the failure of %s", call)
        return text

    # --- failed logins (kept in settings so that every thread and a restart see the same count)

    def _failure_key(self, username: str) -> str:
        # Only the configured user gets its own counter; any other name shares one, so that guessing
        # names cannot fill the state file.
        if hmac.compare_digest(username.encode("utf-8"), self.settings.username.encode("utf-8")):
            name = hashlib.sha256(username.encode("utf-8")).hexdigest()[:16]
        else:
            name = "other-users"
        return f"qbwc.login_failures.{name}"

    def _failures(self, username: str) -> list[dt.datetime]:
        raw = self.store.get_setting(self._failure_key(username))
        try:
            return [dt.datetime.fromisoformat(t) for t in json.loads(raw)] if raw else []
        except (ValueError, TypeError):
            return []

    def _locked_out(self, username: str, now: dt.datetime) -> bool:
        limit = self.settings.max_failed_logins
        failures = self._failures(username)
        if len(failures) < limit:
            return False
        # Locked for `lockout` after `limit` failures that fell within `failed_login_window`.
        burst = failures[-limit:]
        return burst[-1] - burst[0] <= self.settings.failed_login_window and now - burst[-1] < self.settings.lockout

    def _refuse_login(self, username: str, reason: str, now: dt.datetime, *, count: bool) -> None:
        with self.store.atomic():
            if count:
                horizon = self.settings.lockout + self.settings.failed_login_window
                keep = [t for t in self._failures(username) if now - t < horizon]
                keep.append(now)
                self.store.set_setting(
                    self._failure_key(username),
                    json.dumps([t.isoformat() for t in keep[-self.settings.max_failed_logins:]]),
                )
            self.store.audit.append(
                AuditEvent.LOGIN_REFUSED, actor=ACTOR, detail={"user": username[:64], "reason": reason}
            )
        log.warning("login refused for %r: %s", username[:64], reason)

    def _clear_failures(self, username: str) -> None:
        self.store.conn.execute("DELETE FROM settings WHERE key = ?", (self._failure_key(username),))

    # --- session rows

    def _session_for_call(self, ticket: str, call: str) -> Session | None:
        """The live session for ``ticket``, its idle clock reset; None (with the reason kept) if not."""
        session = self._load(ticket)
        now = self.now()
        if session is None:
            log.warning("%s with an unknown ticket %s", call, _ticket_ref(ticket))
            return None
        if not session.state.is_live:
            return None
        if now - session.last_seen_at >= self.settings.idle_timeout:
            if session.state is SessionState.AWAITING:
                self.work.on_session_lost(ticket)
                session.detail["awaited"] = True
            self._end(session, SessionState.EXPIRED, now, error=(
                "This session expired after 30 minutes without a call; "
                "the Web Connector will start a new one at its next run."
            ))
            self.store.audit.append(
                AuditEvent.SESSION_ERROR, actor=ACTOR,
                detail={"session": _ticket_ref(ticket), "call": call, "problem": "expired ticket"},
            )
            return None
        return session

    def _live_sessions(self, company: str) -> list[Session]:
        marks = ",".join("?" for _ in LIVE_STATES)
        rows = self.store.conn.execute(
            f"SELECT ticket FROM qbwc_sessions WHERE company_file = ? AND state IN ({marks}) ORDER BY created_at",
            (company, *sorted(s.value for s in LIVE_STATES)),
        ).fetchall()
        return [s for s in (self._load(r[0]) for r in rows) if s is not None]

    def session(self, ticket: str) -> Session | None:
        """The stored session for ``ticket`` (tests, status)."""
        return self._load(ticket)

    def _load(self, ticket: str) -> Session | None:
        if not ticket:
            return None
        row = self.store.conn.execute(
            "SELECT ticket, username, company_file, state, created_at, last_seen_at, qbxml_version, last_error, detail"
            " FROM qbwc_sessions WHERE ticket = ?",
            (ticket,),
        ).fetchone()
        if row is None:
            return None
        return Session(
            ticket=row[0], username=row[1], company_file=row[2], state=SessionState(row[3]),
            created_at=dt.datetime.fromisoformat(row[4]), last_seen_at=dt.datetime.fromisoformat(row[5]),
            qbxml_version=row[6], last_error=row[7], detail=json.loads(row[8]) if row[8] else {},
        )

    def _insert(self, session: Session) -> None:
        self.store.conn.execute(
            "INSERT INTO qbwc_sessions (ticket, username, company_file, state, qbxml_version, created_at,"
            " last_seen_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session.ticket, session.username, session.company_file, session.state.value, session.qbxml_version,
             _iso(session.created_at), _iso(session.last_seen_at), json.dumps(session.detail)),
        )

    def _save(self, session: Session, now: dt.datetime) -> None:
        session.last_seen_at = now
        self.store.conn.execute(
            "UPDATE qbwc_sessions SET state = ?, qbxml_version = ?, last_seen_at = ?, last_error = ?, detail = ?"
            " WHERE ticket = ?",
            (session.state.value, session.qbxml_version, _iso(now), session.last_error, json.dumps(session.detail),
             session.ticket),
        )

    def _end(self, session: Session, state: SessionState, now: dt.datetime, *, error: str | None) -> None:
        session.state = state
        session.last_error = error
        self.store.conn.execute(
            "UPDATE qbwc_sessions SET state = ?, closed_at = ?, last_error = ?, detail = ? WHERE ticket = ?",
            (state.value, _iso(now), error, json.dumps(session.detail), session.ticket),
        )


def _hresult_text(hresult: str, message: str, note: str | None) -> str:
    hint = HRESULT_HINTS.get(hresult.lower(), "see qbsdklog.txt on the QuickBooks machine and ml-connector's log file")
    text = f"QuickBooks could not process the request ml-connector sent ({hresult}: {message or 'no message'}): {hint}."
    return f"{text} {note}" if note else text


def _minutes(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _norm_path(path: str) -> str:
    return path.replace("/", "\\").strip().casefold()


def _unknown_ticket_text() -> str:
    return (
        "ml-connector does not know this session (it ended or expired); "
        "the Web Connector will start a new one at its next run."
    )

