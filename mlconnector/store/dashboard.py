"""The queries behind ``mlconnector status``: counts, the newest session, what waits for a person."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlconnector.store.db import Store


def newest_session(store: Store) -> dict[str, Any] | None:
    """The newest Web Connector session (never its ticket: that is a credential)."""
    row = store.conn.execute(
        "SELECT state, created_at, last_seen_at, closed_at, last_error FROM qbwc_sessions"
        " ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    return dict(zip(("state", "started_at", "last_seen_at", "closed_at", "last_error"), row)) if row else None


def blocked_postings(store: Store, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` blocked postings by report, with their reasons."""
    return [
        {"report_id": r[0], "part": r[1], "part_count": r[2], "reason": r[3] or ""}
        for r in store.conn.execute(
            "SELECT report_id, part, part_count, reason FROM postings WHERE state = 'blocked'"
            " ORDER BY report_id, part LIMIT ?", (limit,))
    ]


def failed_postings(store: Store, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` failed postings, with QuickBooks' code and message."""
    return [
        {"report_id": r[0], "part": r[1], "part_count": r[2], "ref_number": r[3], "reason": r[4] or "",
         "qb_status_code": r[5], "qb_status_message": r[6], "at": r[7]}
        for r in store.conn.execute(
            "SELECT report_id, part, part_count, ref_number, reason, qb_status_code, qb_status_message, updated_at"
            " FROM postings WHERE state = 'failed' ORDER BY updated_at DESC, id DESC LIMIT ?", (limit,))
    ]


def postings_per_state(store: Store, states: Sequence[str]) -> dict[str, int]:
    """How many postings are in each of ``states`` (absent ones are 0)."""
    marks = ",".join("?" for _ in states)
    counts = dict.fromkeys(states, 0)
    for state, count in store.conn.execute(
            f"SELECT state, COUNT(*) FROM postings WHERE state IN ({marks}) GROUP BY state", tuple(states)):
        counts[str(state)] = int(count)
    return counts


def reports_per_state(store: Store, states: Sequence[str]) -> dict[str, int]:
    """How many reports have a posting in each of ``states``."""
    marks = ",".join("?" for _ in states)
    counts = dict.fromkeys(states, 0)
    for state, count in store.conn.execute(
            f"SELECT state, COUNT(DISTINCT report_id) FROM postings WHERE state IN ({marks}) GROUP BY state",
            tuple(states)):
        counts[str(state)] = int(count)
    return counts


def reports_in_states(store: Store, states: Sequence[str]) -> int:
    """How many reports have a posting in any of ``states``."""
    marks = ",".join("?" for _ in states)
    row = store.conn.execute(
        f"SELECT COUNT(DISTINCT report_id) FROM postings WHERE state IN ({marks})", tuple(states)).fetchone()
    return int(row[0]) if row else 0


def blocked_reasons(store: Store) -> list[tuple[str, str]]:
    """(report ID, reason) of every blocked posting with a reason."""
    return [(str(r[0]), str(r[1])) for r in store.conn.execute(
        "SELECT report_id, reason FROM postings WHERE state = 'blocked' AND reason IS NOT NULL")]


def last_pull(store: Store) -> dict[str, Any] | None:
    """The newest pull run."""
    row = store.conn.execute(
        "SELECT id, started_at, finished_at, result, error FROM pulls ORDER BY id DESC LIMIT 1").fetchone()
    return dict(zip(("id", "started_at", "finished_at", "result", "error"), row)) if row else None


def changed_after_posting(store: Store) -> list[str]:
    """Reports edited in Expensify after QuickBooks got them."""
    return [str(r[0]) for r in store.conn.execute(
        "SELECT report_id FROM reports WHERE changed_after_posting = 1 ORDER BY report_id")]
