"""Web Connector sessions (``qbwc_sessions``): kept in the state file so that a restarted server still
knows which request was in flight."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mlconnector.store.db import Store


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


def load_session(store: Store, ticket: str) -> Session | None:
    """The stored session for ``ticket``."""
    if not ticket:
        return None
    row = store.conn.execute(
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


def insert_session(store: Store, session: Session) -> None:
    """Store a new session."""
    store.conn.execute(
        "INSERT INTO qbwc_sessions (ticket, username, company_file, state, qbxml_version, created_at,"
        " last_seen_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (session.ticket, session.username, session.company_file, session.state.value, session.qbxml_version,
         _iso(session.created_at), _iso(session.last_seen_at), json.dumps(session.detail)),
    )


def save_session(store: Store, session: Session, now: dt.datetime) -> None:
    """Store the session's state and counters; ``now`` is its last call."""
    session.last_seen_at = now
    store.conn.execute(
        "UPDATE qbwc_sessions SET state = ?, qbxml_version = ?, last_seen_at = ?, last_error = ?, detail = ?"
        " WHERE ticket = ?",
        (session.state.value, session.qbxml_version, _iso(now), session.last_error, json.dumps(session.detail),
         session.ticket),
    )


def end_session(store: Store, session: Session, state: SessionState, now: dt.datetime, *, error: str | None) -> None:
    """Close the session in ``state`` (closed, lost, expired), keeping the reason."""
    session.state = state
    session.last_error = error
    store.conn.execute(
        "UPDATE qbwc_sessions SET state = ?, closed_at = ?, last_error = ?, detail = ? WHERE ticket = ?",
        (state.value, _iso(now), error, json.dumps(session.detail), session.ticket),
    )


def live_sessions(store: Store, company: str) -> list[Session]:
    """The company file's sessions the Web Connector may still call with, oldest first."""
    marks = ",".join("?" for _ in LIVE_STATES)
    rows = store.conn.execute(
        f"SELECT ticket FROM qbwc_sessions WHERE company_file = ? AND state IN ({marks}) ORDER BY created_at",
        (company, *sorted(s.value for s in LIVE_STATES)),
    ).fetchall()
    return [s for s in (load_session(store, r[0]) for r in rows) if s is not None]


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")
