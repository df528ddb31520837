"""What the Web Connector protocol works with: its constants, the Work a session drives, the settings.

QBWC.md §2-§3. :mod:`mlconnector.soap.session` answers the eleven calls; the injected :class:`Work`
decides what to send to QuickBooks and what its answers mean.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Protocol

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


def parse_version(text: str) -> tuple[int, ...] | None:
    parts = re.findall(r"\d+", text or "")
    return tuple(int(p) for p in parts) if parts else None


def choose_qbxml_version(configured: str, major: int | None, minor: int | None) -> str | None:
    """The highest version we write that is ≤ the configured one and ≤ what QBWC reports.

    ``major`` 0/None means QBWC did not say; then the configured version is used. None when the
    Web Connector's QuickBooks is older than every version we can write.
    """
    ceiling = parse_version(configured) or (13, 0)
    if major:
        ceiling = min(ceiling, (major, minor or 0))
    fitting = [v for v in SUPPORTED_QBXML_VERSIONS if (parse_version(v) or (0,)) <= ceiling]
    return fitting[-1] if fitting else None


def hresult_text(hresult: str, message: str, note: str | None) -> str:
    hint = HRESULT_HINTS.get(hresult.lower(), "see qbsdklog.txt on the QuickBooks machine and ml-connector's log file")
    text = f"QuickBooks could not process the request ml-connector sent ({hresult}: {message or 'no message'}): {hint}."
    return f"{text} {note}" if note else text


def minutes_text(span: dt.timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def norm_path(path: str) -> str:
    return path.replace("/", "\\").strip().casefold()


def unknown_ticket_text() -> str:
    return (
        "ml-connector does not know this session (it ended or expired); "
        "the Web Connector will start a new one at its next run."
    )
