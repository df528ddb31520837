"""Runs of identical whole-request failures (hresults) per posting (``request_failures``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mlconnector.store.db import Store


def streak(store: Store, posting_id: int, kind: str) -> tuple[str, str, int] | None:
    """(hresult, message, how many in a row) of the posting's current run for this kind of message."""
    row = store.conn.execute(
        "SELECT hresult, message, count FROM request_failures WHERE posting_id = ? AND kind = ?",
        (posting_id, kind)).fetchone()
    return (str(row[0]), str(row[1]), int(row[2])) if row else None


def record_runs(store: Store, kind: str, runs: Mapping[int, int], hresult: str, message: str) -> None:
    """Store each posting's run length (a different failure replaces the run)."""
    now = store.timestamp()
    store.conn.executemany(
        "INSERT INTO request_failures (posting_id, kind, hresult, message, count, last_at) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(posting_id, kind) DO UPDATE SET hresult = excluded.hresult,"
        " message = excluded.message, count = excluded.count, last_at = excluded.last_at",
        [(pid, kind, hresult, message, n, now) for pid, n in runs.items()],
    )


def clear_runs(store: Store, kind: str, posting_ids: Sequence[int]) -> None:
    """QuickBooks read this kind of request for these postings: their runs end."""
    if not posting_ids or store.conn.execute("SELECT 1 FROM request_failures LIMIT 1").fetchone() is None:
        return
    for start in range(0, len(posting_ids), 500):
        chunk = posting_ids[start:start + 500]
        marks = ",".join("?" for _ in chunk)
        store.conn.execute(f"DELETE FROM request_failures WHERE kind = ? AND posting_id IN ({marks})", (kind, *chunk))
