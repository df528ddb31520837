"""The work loop of a session: sendRequestXML hands out qbXML, receiveResponseXML takes QuickBooks' answer.

Also the answers that come back after their session was given up: recorded, never dropped.
"""

from __future__ import annotations

import logging

from mlconnector.errors import QbwcSessionError
from mlconnector.redact import ticket_ref as _ticket_ref
from mlconnector.soap.calls import SessionCalls, _never_raises
from mlconnector.soap.protocol import (
    ACTOR,
    HRESULT_HINTS,
    MAX_NOOPS,
    NOOP,
    SUPPORTED_QBXML_VERSIONS,
    choose_qbxml_version,
    hresult_text,
    norm_path,
)
from mlconnector.store.audit import AuditEvent
from mlconnector.store.sessions import (
    SessionState,
    end_session,
    load_session,
    save_session,
)

log = logging.getLogger("mlconnector.soap.session")


class Exchange(SessionCalls):
    """sendRequestXML and receiveResponseXML."""

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
                save_session(self.store, session, now)
                return ""
            expected = self.settings.company_file
            if expected and company_file_name and norm_path(expected) != norm_path(company_file_name):
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
                save_session(self.store, session, now)
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
            save_session(self.store, session, now)
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
                return self._fail(session, now, hresult_text(hresult, message or "", self.work.failure_note(ticket)),
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
            save_session(self.store, session, now)
            return progress

    def _late(self, ticket: str, response: str, hresult: str, message: str) -> int:
        """An answer on a session that was given up: record it rather than drop it."""
        session = load_session(self.store, ticket)
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
        end_session(self.store, session, session.state, self.now(), error=session.last_error)
        log.warning("session %s: late answer recorded: %s", _ticket_ref(ticket), note)
        return 100  # the Web Connector then closes; closeConnection shows the note

    def _deliver(self, ticket: str, response: str, hresult: str, message: str) -> int:
        if hresult:
            return self.work.handle_failure(ticket, hresult, message)
        return self.work.handle_response(ticket, response)
