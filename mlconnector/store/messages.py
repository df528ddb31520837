"""The qbXML messages handed to the Web Connector (``qbxml_messages``) and the postings each concerns.

A message is stored before it is returned to the Web Connector; its items name the writes it carries
(with their requestIDs), the in-doubt postings it checks, or the postings it verified (only those may
be written in that session).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mlconnector.models import PostingState
from mlconnector.store.db import Store


class Kind(StrEnum):
    """What a stored qbXML message was for."""

    STATUS_CHECK = "status_check"
    RECOVERY_QUERY = "recovery_query"
    LISTS = "lists"
    VERIFY = "verify"
    PAYMENT_CHECK = "payment_check"  # before bill payments: are their bills still open, their names there?
    WRITE = "write"


# The checks that clear postings to be written in their session.
CHECKS = (Kind.LISTS.value, Kind.VERIFY.value, Kind.PAYMENT_CHECK.value)


@dataclass(frozen=True)
class Message:
    """A stored request and the postings it concerns."""

    id: int
    ticket: str
    kind: Kind
    state: str  # sent | answered | lost | failed | late
    message_set_id: str | None
    posting_ids: tuple[int, ...]


def insert_message(store: Store, ticket: str, kind: Kind, text: str, posting_ids: Sequence[int],
                   request_ids: Sequence[str], message_set_id: str | None) -> int:
    """Store a request about to be handed out, with its items; returns its id."""
    cursor = store.conn.execute(
        "INSERT INTO qbxml_messages (ticket, kind, message_set_id, request_xml, state, sent_at)"
        " VALUES (?, ?, ?, ?, 'sent', ?)",
        (ticket, kind.value, message_set_id, text, store.timestamp()),
    )
    message_id = int(cursor.lastrowid or 0)
    store.conn.executemany(
        "INSERT INTO qbxml_message_items (message_id, posting_id, request_id) VALUES (?, ?, ?)",
        [(message_id, pid, request_ids[n] if request_ids else None) for n, pid in enumerate(posting_ids)],
    )
    return message_id


def get_message(store: Store, message_id: int) -> Message:
    """One stored message with its postings."""
    row = store.conn.execute(
        "SELECT id, ticket, kind, state, message_set_id FROM qbxml_messages WHERE id = ?", (message_id,),
    ).fetchone()
    ids = tuple(r[0] for r in store.conn.execute(
        "SELECT posting_id FROM qbxml_message_items WHERE message_id = ? ORDER BY posting_id", (row[0],)))
    return Message(row[0], row[1], Kind(row[2]), row[3], row[4], ids)


def in_flight(store: Store, ticket: str) -> Message | None:
    """The session's message still awaiting its answer."""
    row = store.conn.execute(
        "SELECT id FROM qbxml_messages WHERE ticket = ? AND state = 'sent' ORDER BY id DESC LIMIT 1", (ticket,),
    ).fetchone()
    return get_message(store, int(row[0])) if row else None


def last_message(store: Store, ticket: str) -> Message | None:
    """The session's newest message, whatever became of it."""
    row = store.conn.execute(
        "SELECT id FROM qbxml_messages WHERE ticket = ? ORDER BY id DESC LIMIT 1", (ticket,)).fetchone()
    return get_message(store, int(row[0])) if row else None


def finish_message(store: Store, message_id: int, state: str, *, response: str | None, hresult: str | None,
                   error: str | None) -> None:
    """Record how a message ended (its answer text, or the hresult QuickBooks refused it with)."""
    store.conn.execute(
        "UPDATE qbxml_messages SET state = ?, response_xml = COALESCE(?, response_xml), hresult = ?,"
        " error_message = ?, answered_at = ? WHERE id = ?",
        (state, response, hresult, error, store.timestamp(), message_id),
    )


def message_items(store: Store, message_id: int) -> list[tuple[int, str | None]]:
    """(posting id, requestID) of each item of a message."""
    return [(int(r[0]), r[1]) for r in store.conn.execute(
        "SELECT posting_id, request_id FROM qbxml_message_items WHERE message_id = ? ORDER BY posting_id",
        (message_id,))]


def message_text(store: Store, message_id: int, *, answer: bool) -> tuple[bool, str | None]:
    """(exists, the request or answer text) of a stored message, for ``audit verify``."""
    column = "response_xml" if answer else "request_xml"
    row = store.conn.execute(f"SELECT {column} FROM qbxml_messages WHERE id = ?", (message_id,)).fetchone()
    return (row is not None, None if row is None or row[0] is None else str(row[0]))


def sent_in_session(store: Store, ticket: str, kind: Kind) -> bool:
    """Whether the session already sent a message of this kind."""
    row = store.conn.execute(
        "SELECT 1 FROM qbxml_messages WHERE ticket = ? AND kind = ? LIMIT 1", (ticket, kind.value)).fetchone()
    return row is not None


def latest_check(store: Store, ticket: str) -> int | None:
    """This session's latest answered lists or verify message (what later checks in it may mark verified)."""
    row = store.conn.execute(
        "SELECT id FROM qbxml_messages WHERE ticket = ? AND kind IN (?, ?) AND state = 'answered'"
        " ORDER BY id DESC LIMIT 1", (ticket, Kind.LISTS.value, Kind.VERIFY.value)).fetchone()
    return int(row[0]) if row else None


def checked_in_session(store: Store, ticket: str, kind: Kind) -> set[int]:
    """Postings named by this session's messages of ``kind`` (each is checked once per session)."""
    return {int(r[0]) for r in store.conn.execute(
        "SELECT i.posting_id FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
        " WHERE m.ticket = ? AND m.kind = ?", (ticket, kind.value))}


def mark_verified(store: Store, message_id: int, posting_ids: Sequence[int]) -> None:
    """These postings passed this session's check of their references: they may be written now."""
    store.conn.executemany(
        "INSERT INTO qbxml_message_items (message_id, posting_id, verified) VALUES (?, ?, 1)"
        " ON CONFLICT(message_id, posting_id) DO UPDATE SET verified = 1",
        [(message_id, pid) for pid in posting_ids],
    )


def verified_queue(store: Store, ticket: str) -> Iterator[tuple[int, int]]:
    """(posting id, line count) of queued postings verified in this session, oldest first."""
    for posting_id, lines in store.conn.execute(
        "SELECT p.id, p.line_count FROM postings p WHERE p.state = ? AND p.body IS NOT NULL AND EXISTS ("
        "SELECT 1 FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
        " WHERE i.posting_id = p.id AND m.ticket = ? AND m.kind IN (?, ?, ?) AND m.state = 'answered'"
        " AND i.verified = 1) ORDER BY p.id",
        (PostingState.QUEUED.value, ticket, *CHECKS),
    ):
        yield int(posting_id), int(lines)


def verified_left(store: Store, ticket: str) -> int:
    """Queued postings verified in this session and not written yet."""
    return int(store.conn.execute(
        "SELECT COUNT(*) FROM postings p WHERE p.state = ? AND EXISTS (SELECT 1 FROM qbxml_message_items i"
        " JOIN qbxml_messages m ON m.id = i.message_id WHERE i.posting_id = p.id AND m.ticket = ?"
        " AND m.kind IN (?, ?, ?) AND i.verified = 1)",
        (PostingState.QUEUED.value, ticket, *CHECKS),
    ).fetchone()[0])


def written_in_session(store: Store, ticket: str) -> int:
    """Postings the session handed out in write messages."""
    return int(store.conn.execute(
        "SELECT COUNT(*) FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
        " WHERE m.ticket = ? AND m.kind = ?", (ticket, Kind.WRITE.value),
    ).fetchone()[0])


def session_outcomes(store: Store, ticket: str) -> dict[str, int]:
    """How the postings the session wrote stand now, by state."""
    return {str(state): int(n) for state, n in store.conn.execute(
        "SELECT p.state, COUNT(DISTINCT p.id) FROM qbxml_message_items i JOIN qbxml_messages m"
        " ON m.id = i.message_id JOIN postings p ON p.id = i.posting_id WHERE m.ticket = ? AND m.kind = ?"
        " GROUP BY p.state", (ticket, Kind.WRITE.value))}


def stale_sent(store: Store, ticket: str) -> list[int]:
    """Postings still `sent` under another session (or a message no longer awaited): their answer is lost."""
    return [int(r[0]) for r in store.conn.execute(
        "SELECT DISTINCT i.posting_id FROM qbxml_message_items i JOIN qbxml_messages m ON m.id = i.message_id"
        " JOIN postings p ON p.id = i.posting_id WHERE p.state = ? AND m.kind = ?"
        " AND (m.ticket != ? OR m.state != 'sent')",
        (PostingState.SENT.value, Kind.WRITE.value, ticket),
    )]
