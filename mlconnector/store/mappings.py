"""Mappings from Expensify names to QuickBooks names (``mappings``)."""

from __future__ import annotations

from mlconnector.store.db import Store


def mapping_rows(store: Store, kind: str | None = None) -> list[tuple[str, str, str, str]]:
    """(kind, source, target, updated_at), by kind and source."""
    sql = "SELECT kind, source, target, updated_at FROM mappings"
    params: tuple[str, ...] = ()
    if kind is not None:
        sql += " WHERE kind = ?"
        params = (kind,)
    return [(str(k), str(s), str(t), str(u)) for k, s, t, u in store.conn.execute(sql + " ORDER BY kind, source", params)]


def current_target(store: Store, kind: str, source: str) -> str | None:
    """What ``source`` maps to now, if anything."""
    row = store.conn.execute("SELECT target FROM mappings WHERE kind = ? AND source = ?", (kind, source)).fetchone()
    return str(row[0]) if row else None


def put_mapping(store: Store, kind: str, source: str, target: str) -> None:
    """Set (or replace) one mapping."""
    store.conn.execute(
        "INSERT INTO mappings (kind, source, target, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(kind, source) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at",
        (kind, source, target, store.timestamp()),
    )


def delete_mapping(store: Store, kind: str, source: str) -> None:
    """Remove one mapping."""
    store.conn.execute("DELETE FROM mappings WHERE kind = ? AND source = ?", (kind, source))
