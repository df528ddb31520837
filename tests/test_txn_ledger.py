"""The ledger of QuickBooks transactions per posting: a second live one is a duplicate, recorded once."""

from __future__ import annotations

from pathlib import Path

from mlconnector.models import PostingState
from mlconnector.store import Store
from mlconnector.store import ledger as txn_ledger
from mlconnector.store.audit import AuditEvent
from mlconnector.store.ledger import KnownTxn
from mlconnector.store.migrations import MIGRATIONS
from mlconnector.store.postings import add_posting, transition
from mlconnector.store.reports import save_report

from .factories import bill, report


def _posted(store: Store, txn_id: str = "TX-1") -> int:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    transition(store, pid, PostingState.POSTED, actor="t", txn_id=txn_id)
    return pid


def test_learning_the_same_transaction_again_is_no_duplicate(store: Store) -> None:
    pid = _posted(store)
    assert txn_ledger.learn(store, [KnownTxn(pid, "TX-1", "Bill")], how="written", ticket_ref="a", actor="t") == []
    assert txn_ledger.learn(store, [KnownTxn(pid, "TX-1", "Bill")], how="late_answer", ticket_ref="b", actor="t") == []
    assert txn_ledger.all_duplicates(store) == (0, [])


def test_a_second_transaction_is_a_duplicate_with_the_posting_s_own_txn_id_kept(store: Store) -> None:
    pid = _posted(store)
    txn_ledger.learn(store, [KnownTxn(pid, "TX-1", "Bill")], how="written", ticket_ref="a", actor="t")
    found = txn_ledger.learn(store, [KnownTxn(pid, "TX-0", "Bill", "R00X9oNOn2MO")], how="late_answer",
                             ticket_ref="b", actor="t")
    assert [(d.kept_txn_id, d.extra_txn_ids) for d in found] == [("TX-1", ("TX-0",))]
    assert found[0].fix == "void or delete TxnID TX-0 in QuickBooks (Bill RefNumber R00001); keep TxnID TX-1"
    rows = store.audit.rows(event=AuditEvent.DUPLICATE_IN_QUICKBOOKS)
    assert len(rows) == 1 and rows[0].detail["duplicate_txn_ids"] == ["TX-0"] and rows[0].posting_id == pid
    assert txn_ledger.duplicates_learned_by(store, "b") == 1 and txn_ledger.duplicates_learned_by(store, "x") == 0
    count, listed = txn_ledger.all_duplicates(store)
    assert count == 1 and listed[0].as_dict()["duplicate_txn_ids"] == ["TX-0"]


def test_a_transaction_quickbooks_says_is_gone_is_no_longer_a_duplicate(store: Store) -> None:
    pid = _posted(store)
    txn_ledger.learn(store, [KnownTxn(pid, "TX-1"), KnownTxn(pid, "TX-2")], how="recovered", ticket_ref="a",
                     actor="t")
    assert txn_ledger.all_duplicates(store)[0] == 1
    txn_ledger.mark_gone(store, pid, "TX-2")
    assert txn_ledger.all_duplicates(store) == (0, []) and txn_ledger.live_txns(store, pid) == ["TX-1"]


def test_the_migration_records_the_txn_ids_already_posted(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = Store.open(path, migrations=[m for m in MIGRATIONS if m.name != "0007_posting_txns"])
    pid = _posted(old, "TX-OLD")
    old.close()
    new = Store.open(path)
    try:
        assert txn_ledger.live_txns(new, pid) == ["TX-OLD"]
        found = txn_ledger.learn(new, [KnownTxn(pid, "TX-NEW")], how="late_answer", ticket_ref="s", actor="t")
        assert [d.extra_txn_ids for d in found] == [("TX-NEW",)]
    finally:
        new.close()
