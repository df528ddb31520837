"""Review: late answers (after a takeover) that do not carry each posting's own requestID."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults, RunSummary
from mlconnector.store.audit import AuditEvent
from mlconnector.store.ledger import all_duplicates
from mlconnector.store.postings import postings_in

from .qbwc_support import Clock
from .test_posting_e2e import _config, _queue, _run, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def test_a_late_answer_with_swapped_request_ids_still_records_the_duplicates_it_proves(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config, clock = _config("bill"), Clock()
    with serving(home / "state.db", config, clock) as (url, store):
        _queue(store, config)
        held = qb.hold("BillAddRq")
        out: list[RunSummary] = []
        # The old update's answer will reach the server with its first two requestIDs swapped
        # (the same fault the on-time path already survives: test_exactly_once_e2e).
        thread = threading.Thread(target=lambda: out.append(_run(url, qb, Faults(swap_request_ids_on=2))),
                                  daemon=True)
        thread.start()
        assert held.wait_entered()
        clock.advance(minutes=10)
        takeover = _run(url, qb)  # asks QuickBooks (nothing yet), writes all three again
        assert takeover.stopped == "done", takeover
        held.release()
        thread.join(30)
        count, _ = all_duplicates(store)
        problems = [r.detail for r in store.audit.rows(event=AuditEvent.LATE_ANSWER) if "problem" in r.detail]
        posted = len(postings_in(store, PostingState.POSTED))
    assert len(qb.bills()) == 6 and posted == 3  # QuickBooks holds every report twice
    # Every one of the three is ours (RefNumber and ExternalGUID), so all three are duplicates to void;
    # found: only the unswapped one is; the other two are audited as "matches no posting of ours".
    assert count == 3, (count, problems, out[0].close_message)
