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
import hmac
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mlconnector import __version__
from mlconnector.errors import QbwcSessionError
from mlconnector.passwords import verify_password
from mlconnector.redact import ticket_ref as _ticket_ref
from mlconnector.soap.calls import _never_raises
from mlconnector.soap.exchange import Exchange
from mlconnector.soap.protocol import (
    ACTOR,
    CLOSE_TEXT_WITHOUT_SESSION,
    HRESULT_HINTS,
    MAX_NOOPS,
    MIN_CLIENT_VERSION,
    NOOP,
    SUPPORTED_QBXML_VERSIONS,
    SessionSettings,
    Work,
    choose_qbxml_version,
    minutes_text,
    parse_version,
    unknown_ticket_text,
)
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.sessions import (
    LIVE_STATES,
    Session,
    SessionState,
    end_session,
    insert_session,
    live_sessions,
    load_session,
)

log = logging.getLogger("mlconnector.soap.session")

__all__ = [
    "MAX_NOOPS", "NOOP", "SUPPORTED_QBXML_VERSIONS", "LIVE_STATES", "QbwcService", "Session", "SessionEnd",
    "SessionSettings", "SessionState", "Work", "choose_qbxml_version",
]


@dataclass(frozen=True)
class SessionEnd:
    """A Web Connector session that has just ended, for ``serve``'s one line per session.

    ``summary`` is what closeConnection answers (or would have: posted, failed, blocked); ``reason`` is
    None for a session that ran to its end, else why it stopped early or was given up.
    """

    user: str
    company_file: str
    started: dt.datetime
    ended: dt.datetime
    summary: str
    reason: str | None = None


class QbwcService(Exchange):
    """The eleven Web Connector calls over one state file.

    Args:
        store: the state file (sessions, settings, audit).
        work: what the sessions do (see :class:`~mlconnector.soap.protocol.Work`).
        settings: login, company file and limits.
        now: the clock; defaults to the store's.
        on_session_end: told of every session that ends (closed, or given up), after its end is committed;
            an exception it raises is logged and never reaches the Web Connector.
    """

    def __init__(self, store: Store, work: Work, settings: SessionSettings,
                 now: Callable[[], dt.datetime] | None = None, *,
                 on_session_end: Callable[[SessionEnd], None] | None = None) -> None:
        super().__init__(store, work, settings, now)
        self.on_session_end = on_session_end
        self._ended: list[SessionEnd] = []  # ended inside the current transaction; told once it commits
        self._told: dict[str, None] = {}  # tickets expired on a call, so a second late call is not told again

    def _session_ended(self, session: Session, ended: dt.datetime, *, summary: str | None = None,
                       reason: str | None = None) -> None:
        """Note an ended session; :meth:`_tell_ended` passes it on after the transaction commits."""
        if self.on_session_end is None:
            return
        text = summary or self.work.summary(session.ticket) or self._default_summary(session)
        self._ended.append(SessionEnd(session.username, session.company_file, session.created_at, ended, text,
                                      reason))

    @contextmanager
    def _telling_ends(self) -> Iterator[None]:
        """Around a call: tell the sessions it ended once it returns; forget them if it raised (rolled back)."""
        try:
            yield
        except BaseException:
            self._ended.clear()
            raise
        self._tell_ended()

    def _tell_ended(self) -> None:
        ended, self._ended = self._ended, []
        for end in ended:
            try:
                if self.on_session_end is not None:
                    self.on_session_end(end)
            except Exception:  # a console gone away must not fail the Web Connector's call
                log.warning("could not report the end of a session", exc_info=True)

    def _session_for_call(self, ticket: str, call: str) -> Session | None:
        """As the base class; a session it finds idle for too long (and expires) counts as given up."""
        session = super()._session_for_call(ticket, call)
        if session is None and self.on_session_end is not None:
            gone = load_session(self.store, ticket)
            if (gone is not None and gone.state is SessionState.EXPIRED and gone.ticket not in self._told
                    and self.now() - gone.last_seen_at >= self.settings.idle_timeout):
                self._told[gone.ticket] = None
                if len(self._told) > 100:
                    self._told.pop(next(iter(self._told)))
                self._session_ended(gone, self.now(), reason=gone.last_error)
        return session

    def server_version(self) -> str:
        """Shown in QBWC's "More Information"."""
        return f"ml-connector {__version__}"

    @_never_raises(lambda self, ticket, message: "", takes_ticket=False)
    def client_version(self, version: str) -> str:
        """``""`` to go on; ``W:`` warning on a Web Connector older than :data:`MIN_CLIENT_VERSION`."""
        parsed = parse_version(version or "")
        if parsed is not None and parsed[:2] < MIN_CLIENT_VERSION:
            wanted = ".".join(str(p) for p in MIN_CLIENT_VERSION)
            return (
                f"W:This Web Connector ({version}) is older than {wanted}, the oldest ml-connector is tested with. "
                "Install the current QuickBooks Web Connector from Intuit, or press OK to try anyway."
            )
        return ""

    def authenticate(self, username: str, password: str) -> list[str]:
        """``[ticket, company]`` when there is work, ``["", "none"]`` when not, ``["", "nvu"]``, ``["", "busy"]``.

        Raises:
            QbwcSessionError: an unexpected failure (already logged and audited).
        """
        username = username or ""
        try:
            with self._telling_ends():
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
        if self.logins.locked_out(username, now):
            self.logins.refuse(username, "too many failed attempts; wait and try again", now, count=False)
            return ["", "nvu"]
        # Both checks always run, so a wrong user name costs as much time as a wrong password.
        user_ok = hmac.compare_digest(username.encode("utf-8"), self.settings.username.encode("utf-8"))
        password_ok = verify_password(password, self.settings.password_hash) if self.settings.password_hash else False
        if not (user_ok and password_ok):
            self.logins.refuse(username, "wrong user name or password", now, count=True)
            return ["", "nvu"]
        company = self.settings.company_file
        with self.store.atomic():
            self.logins.clear(username)
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
            insert_session(self.store, session)
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
        for old in live_sessions(self.store, company):
            if old.state is SessionState.AWAITING and now - old.last_seen_at < self.settings.takeover_after:
                busy = old
            elif old.state is SessionState.AWAITING:
                self.work.on_session_lost(old.ticket)
                old.detail["awaited"] = True  # its answer may still come: see _late
                end_session(self.store, old, SessionState.LOST, now, error=(
                    "a new Web Connector session took over after "
                    f"{minutes_text(self.settings.takeover_after)} without QuickBooks' answer"))
                self._session_ended(old, now, reason=old.last_error)
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(old.ticket), "call": "authenticate",
                            "problem": "taken over: the answer to the last request was lost (or is late); its work is in doubt"},
                )
            elif now - old.last_seen_at >= self.settings.idle_timeout:
                end_session(self.store, old, SessionState.EXPIRED, now, error="no call from the Web Connector for 30 minutes")
                self._session_ended(old, now, reason=old.last_error)
            else:
                end_session(self.store, old, SessionState.CLOSED, now, error=(
                    "a newer Web Connector session replaced this one; it starts over at its next run"))
                self._session_ended(old, now, reason="replaced by a newer session (nothing was outstanding)")
                self.store.audit.append(
                    AuditEvent.SESSION_CLOSED, actor=ACTOR,
                    detail={"session": _ticket_ref(old.ticket), "ended_as": old.state.value,
                            "summary": "replaced by a newer session (nothing was outstanding)"},
                )
        return busy

    @_never_raises(lambda self, ticket, message: str(message))
    def get_last_error(self, ticket: str) -> str:
        """``NoOp`` when QBWC should ask again in 5 s, else a sentence a person can act on."""
        with self.store.atomic():
            session = load_session(self.store, ticket)
            if session is None:
                return unknown_ticket_text()
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
        with self._telling_ends():
            hint = HRESULT_HINTS.get((hresult or "").lower(), "")
            text = ("The Web Connector could not connect to QuickBooks "
                    f"({hresult or 'no code'}: {message or 'no message'})")
            text += f": {hint}." if hint else "."
            with self.store.atomic():
                session = load_session(self.store, ticket)
                self.store.audit.append(
                    AuditEvent.SESSION_ERROR, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "call": "connectionError", "hresult": hresult or "",
                            "message": message or "", "hint": hint},
                )
                if session is not None and session.state.is_live:
                    if session.state is SessionState.AWAITING:
                        self.work.on_session_lost(ticket)
                    now = self.now()
                    end_session(self.store, session, SessionState.CLOSED, now, error=text)
                    self._session_ended(session, now, reason=text)
            log.warning("connectionError: %s", text)
            return "done"

    @_never_raises(lambda self, ticket, message: "ml-connector: the session ended with an error; see its log file.")
    def close_connection(self, ticket: str) -> str:
        """End the session; a one-line summary for QBWC's status column."""
        with self._telling_ends():
            with self.store.atomic():
                session = load_session(self.store, ticket)
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
                end_session(self.store, session, SessionState.CLOSED, now, error=session.last_error)
                self.store.audit.append(
                    AuditEvent.SESSION_CLOSED, actor=ACTOR,
                    detail={"session": _ticket_ref(ticket), "ended_as": previous.value, "summary": summary,
                            **{k: session.detail.get(k, 0) for k in ("requests", "responses", "failures")}},
                )
                stopped = session.last_error if previous is SessionState.FAILED else None
                self._session_ended(session, now, summary=summary,
                                    reason=None if stopped and stopped in summary else stopped)
            log.info("session %s closed: %s", _ticket_ref(ticket), summary)
            return summary

    def get_interactive_url(self, ticket: str, session_id: str) -> str:
        """ml-connector never asks for interactive mode, so there is no page to open."""
        return ""

    def interactive_done(self, ticket: str) -> str:
        """Interactive mode is never started; tell QBWC it is finished."""
        return "Done"

    def interactive_rejected(self, ticket: str, reason: str) -> str:
        """Nothing depended on interactive mode."""
        return "ml-connector does not use interactive mode; nothing was changed."
