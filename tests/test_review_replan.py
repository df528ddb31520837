"""Review: a late answer for a report re-planned (blocked) after recovery queued it again."""

from __future__ import annotations

from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.services.mappings import set_mapping
from mlconnector.services.queue import replan_unsent
from mlconnector.soap.work import PostingWork
from mlconnector.store import Store
from mlconnector.store.ledger import all_duplicates
from mlconnector.store.postings import postings_for_report

from .test_posting_e2e import SAMPLE, TODAY, _config, _queue
from .test_posting_work import _step, _until_done


def test_a_late_answer_for_a_report_blocked_by_a_re_plan_is_not_lost(store: Store) -> None:
    qb = QuickBooksSimulator.seeded()
    config = _config("bill")
    work = PostingWork(store, config)
    _queue(store, config, SAMPLE[2:])  # R00Bob1
    _step(work, qb, "A")  # the lists
    write = work.next_request("A", "13.0", None)
    assert write is not None and "BillAddRq" in write  # handed to QuickBooks, which is slow ...
    work.on_session_lost("A")  # ... so a new update takes over after takeover_after_minutes
    _step(work, qb, "B")  # error-recovery status check: QuickBooks has nothing stored yet
    _step(work, qb, "B")  # query by RefNumber: absent, so queued again
    assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.QUEUED]
    # Meanwhile a bookkeeper changes a mapping (`mlconnector map set` re-plans unsent reports): blocked.
    set_mapping(store, "category", "Office Supplies", "No Such Account", actor="test")
    replan_unsent(store, config, today=TODAY, actor="test")
    assert [p.state for p in postings_for_report(store, "R00Bob1")] == [PostingState.BLOCKED]
    # QuickBooks finishes the old request; its answer arrives late and names our bill.
    note = work.handle_late_response("A", qb.process_request(write))
    assert len(qb.bills()) == 1
    # The mapping is fixed, the report re-planned and posted: QuickBooks now holds it twice.
    set_mapping(store, "category", "Office Supplies", "Office Supplies", actor="test")
    replan_unsent(store, config, today=TODAY, actor="test")
    _until_done(work, qb, "C")
    count, _ = all_duplicates(store)
    states = [p.state for p in postings_for_report(store, "R00Bob1")]
    # The late answer settles the re-planned posting (its ExternalGUID is the report's and part's), so the
    # report is never written again; were it written anyway, the second bill would be a recorded duplicate.
    assert (states == [PostingState.POSTED] and len(qb.bills()) == 1) or count == 1, (note, states, count)
    assert "1 report(s) settled" in (note or "")
