from __future__ import annotations

from decimal import Decimal

import pytest

from mlconnector.errors import NotFoundError, StoreError
from mlconnector.models import PostingMode, PostingState
from mlconnector.store import Store
from mlconnector.store.postings import (
    add_blocked_report,
    add_posting,
    delete_unsent_postings,
    get_posting,
    posting_from_json,
    posting_to_json,
    postings_for_report,
    postings_in,
    transition,
)
from mlconnector.store.reports import (
    SaveOutcome,
    load_report,
    save_report,
    unplanned_report_ids,
)

from .factories import bill, expense, report


def test_a_report_round_trips_exactly(store: Store) -> None:
    original = report("R00X9oNOn2MO", expense(1, "-3.10", tags=("a:b",), billable=True, reimbursable=False))
    assert save_report(store, original) is SaveOutcome.NEW
    assert load_report(store, "R00X9oNOn2MO") == original


def test_saving_the_same_report_twice_is_unchanged_and_audited_once(store: Store) -> None:
    save_report(store, report())
    assert save_report(store, report()) is SaveOutcome.UNCHANGED
    assert [r.event for r in store.audit.rows()] == ["pulled"]


def test_a_report_edited_before_posting_is_replaced_and_its_postings_dropped(store: Store) -> None:
    save_report(store, report())
    add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="x", actor="t")
    edited = report("R00001", expense(1, "99.00"))
    assert save_report(store, edited) is SaveOutcome.CHANGED
    assert load_report(store, "R00001").total == Decimal("99.00")
    assert postings_for_report(store, "R00001") == []
    assert unplanned_report_ids(store) == ["R00001"]
    assert store.audit.rows()[-1].detail["unsent_postings_dropped"] == 1


def test_a_report_edited_after_posting_is_flagged_and_not_replaced(store: Store) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="x", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    edited = report("R00001", expense(1, "99.00"))
    assert save_report(store, edited) is SaveOutcome.CHANGED_AFTER_POSTING
    assert save_report(store, edited) is SaveOutcome.CHANGED_AFTER_POSTING
    assert load_report(store, "R00001").total == Decimal("19.75")
    assert [r.event for r in store.audit.rows()].count("changed_after_posting") == 1
    assert get_posting(store, pid).state is PostingState.SENT
    assert unplanned_report_ids(store) == []


def test_loading_an_unknown_report_says_pull_first(store: Store) -> None:
    with pytest.raises(NotFoundError, match="report NOPE is not in the state file"):
        load_report(store, "NOPE")


def test_posting_json_round_trip() -> None:
    assert posting_from_json(posting_to_json(bill())) == bill()


def test_the_state_machine_allows_the_documented_path_with_an_audit_row_each(store: Store) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="plan")
    transition(store, pid, PostingState.SENT, actor="qbwc", request_id="1", message_set_id="ms1")
    done = transition(store, pid, PostingState.POSTED, actor="qbwc", txn_id="TX-1", edit_sequence="1700")
    assert (done.state, done.txn_id, done.message_set_id) == (PostingState.POSTED, "TX-1", "ms1")
    assert done.posting == bill()
    events = [(r.event, r.posting_id) for r in store.audit.rows()]
    assert events[-3:] == [("queued", pid), ("sent", pid), ("posted", pid)]
    assert store.audit.rows()[-1].detail["txn_id"] == "TX-1"


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], PostingState.POSTED),  # queued -> posted without being sent
        ([PostingState.SENT], PostingState.QUEUED),  # sent -> queued without a recovery check
        ([PostingState.SENT, PostingState.POSTED], PostingState.FAILED),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(store: Store, path: list[PostingState], illegal: PostingState) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    for state in path:
        transition(store, pid, state, actor="t")
    before = len(store.audit.rows())
    with pytest.raises(StoreError, match="cannot go from"):
        transition(store, pid, illegal, actor="t")
    assert len(store.audit.rows()) == before


def test_expect_guards_against_a_concurrent_change(store: Store) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    with pytest.raises(StoreError, match="is queued, not in_doubt"):
        transition(store, pid, PostingState.BLOCKED, actor="t", expect=PostingState.IN_DOUBT)


def test_blocked_reports_have_a_reason_and_count(store: Store) -> None:
    save_report(store, report())
    pid = add_blocked_report(store, "R00001", mode=PostingMode.BILL, report_fingerprint="f",
                             reason="category 'Travel' has no account", actor="plan")
    assert get_posting(store, pid).posting is None
    assert store.posting_counts()[PostingState.BLOCKED] == 1
    assert [p.id for p in postings_in(store, PostingState.BLOCKED)] == [pid]


def test_unsent_postings_can_be_dropped_but_sent_ones_cannot(store: Store) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    with pytest.raises(StoreError):
        delete_unsent_postings(store, "R00001")


def test_expensify_marking_a_posted_report_reimbursed_is_not_a_change(store: Store) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    transition(store, pid, PostingState.POSTED, actor="t", txn_id="TX-1")
    assert save_report(store, report(status="Reimbursed", policy_name="Renamed policy")) is SaveOutcome.UNCHANGED
    assert load_report(store, "R00001").status == "Reimbursed"
    assert store.conn.execute("SELECT changed_after_posting FROM reports").fetchone()[0] == 0
    assert "changed_after_posting" not in [r.event for r in store.audit.rows()]


def test_a_report_flagged_while_out_and_then_refused_by_quickbooks_is_planned_again_once_edited(
    store: Store,
) -> None:
    save_report(store, report())
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    edited = report("R00001", expense(1, "99.00"))
    assert save_report(store, edited) is SaveOutcome.CHANGED_AFTER_POSTING  # flagged while it was out
    transition(store, pid, PostingState.FAILED, actor="t", reason="QuickBooks refused it")  # nothing in QuickBooks
    assert save_report(store, edited) is SaveOutcome.CHANGED
    assert store.conn.execute("SELECT changed_after_posting FROM reports").fetchone()[0] == 0
    assert unplanned_report_ids(store) == ["R00001"]  # planned again on this pull, not lost
    assert load_report(store, "R00001").total == Decimal("99.00")


def test_a_deleted_postings_id_is_never_handed_out_again(store: Store) -> None:
    from mlconnector.store.postings import delete_unsent_postings

    save_report(store, report())
    first = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    delete_unsent_postings(store, "R00001")  # a re-plan drops it
    second = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    assert second > first  # audit rows and message items that name `first` never point at `second`


def test_the_autoincrement_migration_keeps_existing_postings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from mlconnector.store.migrations import MIGRATIONS

    path = tmp_path / "state.db"
    old = Store.open(path, migrations=[m for m in MIGRATIONS if m.name != "0006_postings_autoincrement"])
    save_report(old, report())
    pid = add_posting(old, bill(), state=PostingState.QUEUED, report_fingerprint="f", actor="t")
    dropped = add_posting(old, bill(part=2, part_count=2), state=PostingState.QUEUED, report_fingerprint="f",
                          actor="t")
    old.conn.execute("DELETE FROM postings WHERE id = ?", (dropped,))  # named by its audit row only
    old.close()
    new = Store.open(path)
    assert get_posting(new, pid).posting == bill()
    later = add_posting(new, bill(part=3, part_count=3), state=PostingState.QUEUED, report_fingerprint="f",
                        actor="t")
    assert later > dropped
    ddl = new.conn.execute("SELECT sql FROM sqlite_master WHERE name = 'postings'").fetchone()[0]
    assert "AUTOINCREMENT" in ddl
    new.close()
