"""Reports planned with nothing to post (``plan_skips``), remembered with the fingerprint they were
planned at, so an unchanged report is not planned (and noted) again on every pull."""

from __future__ import annotations

from mlconnector.store.db import Store


def skipped_reports(store: Store, settings_digest: str) -> set[str]:
    """Reports skipped under these settings and unchanged since."""
    return {str(r[0]) for r in store.conn.execute(
        "SELECT s.report_id FROM plan_skips s JOIN reports r ON r.report_id = s.report_id"
        " WHERE s.fingerprint = r.fingerprint || ?", (settings_digest,))}


def add_skip(store: Store, report_id: str, key: str, reason: str) -> None:
    """Remember that the report, as it is (``key``), has nothing to post."""
    store.conn.execute("INSERT INTO plan_skips (report_id, fingerprint, reason, at) VALUES (?, ?, ?, ?)",
                       (report_id, key, reason, store.timestamp()))


def clear_skip(store: Store, report_id: str) -> None:
    """Forget the report's skip: it is planned again."""
    store.conn.execute("DELETE FROM plan_skips WHERE report_id = ?", (report_id,))
