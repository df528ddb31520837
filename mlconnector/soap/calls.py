"""What every Web Connector call shares: the session rows, failing a session, unexpected errors."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mlconnector.errors import MlConnectorError
from mlconnector.redact import ticket_ref as _ticket_ref
from mlconnector.soap.logins import LoginGuard
from mlconnector.soap.protocol import ACTOR, SessionSettings, Work
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.sessions import (
    Session,
    SessionState,
    end_session,
    load_session,
    save_session,
)

log = logging.getLogger("mlconnector.soap.session")

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
        def wrapper(self: SessionCalls, *args: Any, **kwargs: Any) -> T:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                ticket = str(args[0]) if takes_ticket and args and isinstance(args[0], str) else ""
                text = self._record_exception(method.__name__, ticket, exc)
                return fallback(self, ticket, text)

        return wrapper

    return decorate


class SessionCalls:
    """The state behind the calls (see :class:`~mlconnector.soap.session.QbwcService`).

    Args:
        store: the state file (sessions, settings, audit).
        work: what the sessions do (see :class:`~mlconnector.soap.protocol.Work`).
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
        self.logins = LoginGuard(store, settings.username, max_failed=settings.max_failed_logins,
                                 window=settings.failed_login_window, lockout=settings.lockout)
        # What the last ticket-less authenticate answered, for the closeConnection("") that follows it.
        self._last_refusal = ""

    def session(self, ticket: str) -> Session | None:
        """The stored session for ``ticket`` (tests, status)."""
        return load_session(self.store, ticket)

    def _session_for_call(self, ticket: str, call: str) -> Session | None:
        """The live session for ``ticket``, its idle clock reset; None (with the reason kept) if not."""
        session = load_session(self.store, ticket)
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
            end_session(self.store, session, SessionState.EXPIRED, now, error=(
                "This session expired after 30 minutes without a call; "
                "the Web Connector will start a new one at its next run."
            ))
            self.store.audit.append(
                AuditEvent.SESSION_ERROR, actor=ACTOR,
                detail={"session": _ticket_ref(ticket), "call": call, "problem": "expired ticket"},
            )
            return None
        return session

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
        save_session(self.store, session, now)
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
                session = load_session(self.store, ticket) if ticket else None
                if session is not None and session.state.is_live:
                    if session.state is SessionState.AWAITING:
                        # Whatever QuickBooks did with the request in flight is now unknown.
                        self.work.on_session_lost(ticket)
                    session.state = SessionState.FAILED
                    session.last_error = text
                    session.detail.pop("after_empty", None)
                    save_session(self.store, session, self.now())
        except Exception:  # the state file itself is failing; the log line above is what remains
            log.exception("could not record the failure of %s", call)
        return text
