"""The cache of QuickBooks' accounts, vendors, classes and customers (``qb_lists``)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from mlconnector.models import ListKind
from mlconnector.qbxml.parse import ListRecord
from mlconnector.store.db import Store


def cache_records(store: Store, records: Iterable[ListRecord], seen_at: str) -> None:
    """Insert or update list records, stamped with when they were seen."""
    store.conn.executemany(
        "INSERT INTO qb_lists (kind, full_name, list_id, edit_sequence, is_active, email, detail, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(kind, full_name) DO UPDATE SET list_id = excluded.list_id,"
        " edit_sequence = excluded.edit_sequence, is_active = excluded.is_active, email = excluded.email,"
        " detail = excluded.detail, seen_at = excluded.seen_at",
        [
            (r.kind.value, r.full_name, r.list_id, r.edit_sequence, int(r.is_active), r.email,
             json.dumps({"account_type": r.account_type}) if r.account_type else None, seen_at)
            for r in records
        ],
    )


def drop_unseen(store: Store, kind: str, seen_at: str) -> None:
    """Forget the records of a list that a complete refresh (stamped ``seen_at``) did not return."""
    store.conn.execute("DELETE FROM qb_lists WHERE kind = ? AND seen_at != ?", (kind, seen_at))


_KINDS = {kind.value: kind for kind in ListKind}


def cached_records(store: Store) -> list[ListRecord]:
    """Every cached record (ListID, EditSequence, active flag, e-mail)."""
    kinds = _KINDS  # rows of a kind this version does not know are skipped
    return [
        ListRecord(kinds[k], n, lid, seq, is_active is None or bool(is_active), email)
        for k, n, lid, seq, is_active, email in store.conn.execute(
            "SELECT kind, full_name, list_id, edit_sequence, is_active, email FROM qb_lists")
        if k in kinds
    ]
