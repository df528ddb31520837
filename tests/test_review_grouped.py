"""Review: journal_lines = "grouped" with a report whose expenses net to zero per group."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlconnector.models import PostingState, ReimbursableMode
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.store.postings import postings_for_report

from .factories import expense, report
from .test_plan import ANN, DAY
from .test_posting_e2e import SAMPLE, _config, _expense, _queue, _report, _run, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def test_grouped_journal_of_a_purchase_and_its_refund_is_not_an_empty_entry() -> None:
    # A purchase and its full refund, same account, class and customer: the group nets to zero.
    r = report("R00Zero", expense(1, "50.00"), expense(2, "-50.00"))
    plan = plan_report(r, ANN, PlanSettings(mode=ReimbursableMode.JOURNAL, journal_lines="grouped"), posting_day=DAY)
    # Expected: nothing to post (a note), as for a report with no owed expense; never a JournalEntryAdd
    # with no lines (schema-invalid: QuickBooks answers 0x80040400 for the whole message).
    assert all(len(p.lines) > 0 for p in plan.postings), plan.postings


def test_an_empty_grouped_journal_entry_does_not_fail_the_good_reports_batched_with_it(
    tmp_path: Path, qb: QuickBooksSimulator
) -> None:
    refunded = _report("R00Zero", "ann@example.com", _expense(1, "50.00"), _expense(2, "-50.00"))
    config = _config("journal", journal_credit_account="Accounts Payable", journal_lines="grouped")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, (*SAMPLE, refunded))
        runs = [_run(url, qb) for _ in range(3)]
        states = {r: [p.state for p in postings_for_report(store, r)] for r in ("R00Ann1", "R00Ann2", "R00Bob1")}
    assert [r.stopped for r in runs] != ["error"] * 3, [r.last_error for r in runs]
    assert states == dict.fromkeys(states, [PostingState.POSTED])
