"""Pull runs (``pulls``) and the "exported" stamp of reports QuickBooks has in full."""

from __future__ import annotations

from collections.abc import Sequence

from mlconnector.models import PostingMode, PostingState

# The last day a pull covered: where the next plain pull continues from (`status` reads it too).
LAST_PULL_SETTING = "pull.last_success_day"
from mlconnector.store.db import Store


def start_pull(store: Store) -> int:
    """Record a pull that starts now; returns its id."""
    cursor = store.conn.execute("INSERT INTO pulls (started_at) VALUES (?)", (store.timestamp(),))
    return int(cursor.lastrowid or 0)


def finish_pull(store: Store, pull_id: int | None, result: str, summary_json: str, error: str | None = None) -> None:
    """Record how a pull ended (``ok``, ``partial`` or ``failed``) with its summary."""
    store.conn.execute(
        "UPDATE pulls SET finished_at = ?, result = ?, summary = ?, error = ? WHERE id = ?",
        (store.timestamp(), result, summary_json, error, pull_id),
    )


def posted_not_stamped(store: Store) -> list[str]:
    """Reports QuickBooks has accepted in full (every posting ``posted``) and not stamped yet.

    A bill payment does not count: the report was exported once its expenses were in QuickBooks.
    """
    return [str(row[0]) for row in store.conn.execute(
        "SELECT r.report_id FROM reports r WHERE r.exported_stamped_at IS NULL"
        " AND EXISTS (SELECT 1 FROM postings p WHERE p.report_id = r.report_id AND p.mode != ?)"
        " AND NOT EXISTS (SELECT 1 FROM postings p WHERE p.report_id = r.report_id AND p.state != ? AND p.mode != ?)"
        " ORDER BY r.report_id",
        (PostingMode.BILL_PAYMENT.value, PostingState.POSTED.value, PostingMode.BILL_PAYMENT.value),
    )]


def mark_stamped(store: Store, report_ids: Sequence[str], at: str) -> None:
    """These reports are stamped exported in Expensify."""
    store.conn.executemany("UPDATE reports SET exported_stamped_at = ? WHERE report_id = ?",
                           [(at, rid) for rid in report_ids])
