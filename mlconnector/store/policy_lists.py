"""Expensify's own category, tag and employee lists per policy (``expensify_lists``)."""

from __future__ import annotations

import json
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


# When the last complete refresh ran, and for which configured policies ("[]" = every policy the user sees).
REFRESHED_AT = "expensify_lists.refreshed_at"
REFRESHED_POLICIES = "expensify_lists.policy_ids"


def mark_refreshed(store: Store, at: str, policy_ids: Iterable[str]) -> None:
    """Record that every list was refreshed at ``at`` for the configured ``policy_ids``."""
    store.set_setting(REFRESHED_AT, at)
    store.set_setting(REFRESHED_POLICIES, json.dumps(sorted(policy_ids)))


def last_refresh(store: Store) -> tuple[str | None, list[str]]:
    """When the lists were last refreshed (None: never, or before this was recorded) and for which policies."""
    try:
        policies = json.loads(store.get_setting(REFRESHED_POLICIES) or "[]")
    except ValueError:
        policies = []
    return store.get_setting(REFRESHED_AT), [str(p) for p in policies] if isinstance(policies, list) else []


def list_entries(store: Store) -> list[tuple[str, str, str, bool, str]]:
    """Every stored entry as (policy_id, kind, name, enabled, detail JSON), by policy, kind and name."""
    return [
        (str(p), str(k), str(n), bool(e), str(d or "{}"))
        for p, k, n, e, d in store.conn.execute(
            "SELECT policy_id, kind, name, enabled, detail FROM expensify_lists ORDER BY policy_id, kind, name")
    ]


def newest_fetch(store: Store) -> str | None:
    """When the newest stored entry was fetched, or None when there is none."""
    row = store.conn.execute("SELECT MAX(fetched_at) FROM expensify_lists").fetchone()
    return str(row[0]) if row and row[0] is not None else None
