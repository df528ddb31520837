"""Expensify's own category, tag and employee lists per policy (``expensify_lists``)."""

from __future__ import annotations

from collections.abc import Iterable

from mlconnector.store.db import Store


def replace_policy_lists(store: Store, policy_id: str, rows: Iterable[tuple[str, str, bool, str]], at: str) -> None:
    """Replace a policy's entries with ``rows`` of (kind, name, enabled, detail JSON)."""
    store.conn.execute("DELETE FROM expensify_lists WHERE policy_id = ?", (policy_id,))
    store.conn.executemany(
        "INSERT OR REPLACE INTO expensify_lists (policy_id, kind, name, enabled, detail, fetched_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(policy_id, kind, name, int(enabled), detail, at) for kind, name, enabled, detail in rows],
    )
