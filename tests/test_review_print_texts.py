"""Review: what ml-connector tells a person about a check to be printed (it has no RefNumber)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import RunSummary
from mlconnector.store.audit import AuditEvent
from mlconnector.store.ledger import all_duplicates

from .qbwc_support import Clock
from .test_kinds_e2e import REPORTS
from .test_posting_e2e import _config, _queue, _run, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def test_the_duplicate_and_recovery_texts_for_checks_to_print_name_no_empty_refnumber(
    home: Path, qb: QuickBooksSimulator
) -> None:
    config, clock = _config("check", check_account="Checking", check_to_print=True), Clock()
    with serving(home / "state.db", config, clock) as (url, store):
        _queue(store, config, REPORTS)
        held = qb.hold("CheckAddRq")
        out: list[RunSummary] = []
        thread = threading.Thread(target=lambda: out.append(_run(url, qb)), daemon=True)
        thread.start()
        assert held.wait_entered()
        clock.advance(minutes=10)
        assert _run(url, qb).stopped == "done"  # takeover: recovery finds nothing, writes both again
        held.release()
        thread.join(30)
        _, dups = all_duplicates(store)
        recovered = [str(r.detail.get("how")) for r in store.audit.rows(event=AuditEvent.RECOVERED)]
    assert len(dups) == 2
    texts = [d.fix for d in dups] + recovered
    # Found: "void or delete TxnID … in QuickBooks (Check RefNumber ); keep TxnID …" and
    # "RefNumber  is not in QuickBooks; queued again" (it was looked up by payee and date).
    assert not [t for t in texts if "RefNumber  " in t or "RefNumber )" in t], texts
