"""After a list refresh, blocked reports are planned again a chunk per Web Connector call (issue #15: the
slowest call grew with the backlog), and a session that stops part-way leaves the rest for the next one."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mlconnector.models import PostingState
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import Faults
from mlconnector.soap.work.core import REPLAN_CHUNK, REPLAN_KEY

from .qbwc_support import Clock
from .test_posting_e2e import _config, _expense, _queue, _report, _run, serving

pytestmark = pytest.mark.slow

COUNT = 2 * REPLAN_CHUNK + 20


def test_a_backlog_is_planned_again_in_chunks_and_posted_exactly_once_across_sessions(
    tmp_path: Path, reference_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    import mlconnector.soap.work.lists as lists

    monkeypatch.setattr(lists, "REPLAN_BUDGET", dt.timedelta(0))  # one chunk per call, as for a huge backlog
    qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    reports = tuple(_report(f"R{n:05d}", "ann@example.com", _expense(n, "10.00")) for n in range(COUNT))
    config = _config("bill")
    path, clock = tmp_path / "state.db", Clock()
    with serving(path, config, clock) as (url, store):
        _queue(store, config, reports)  # blocked: ann's vendor is found by e-mail only once the lists arrive
        assert store.posting_counts()[PostingState.BLOCKED] == COUNT
        stopped = _run(url, qb, Faults(stop_after=1))  # serve stops right after the lists answer
        assert stopped.stopped == "stopped"
        pending = json.loads(store.get_setting(REPLAN_KEY) or "{}")
        # The lists answer planned one chunk again; the rest waits, kept in the state file.
        assert len(pending["reports"]) == COUNT - REPLAN_CHUNK
    with serving(path, config, clock) as (url, store):
        clock.advance(minutes=31)
        summary = _run(url, qb)
        states = store.posting_counts()
        left = store.get_setting(REPLAN_KEY)
    assert summary.stopped == "done", summary
    assert left is None and states[PostingState.POSTED] == COUNT and states[PostingState.BLOCKED] == 0
    assert Counter(t.kind for t in qb.transactions) == Counter({"Bill": COUNT})
    assert len({b.ref_number for b in qb.bills()}) == COUNT  # each report once


def test_in_one_session_every_chunk_is_checked_and_written_in_it(
    tmp_path: Path, reference_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    import mlconnector.soap.work.lists as lists

    monkeypatch.setattr(lists, "REPLAN_BUDGET", dt.timedelta(0))
    qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    reports = tuple(_report(f"R{n:05d}", "ann@example.com", _expense(n, "10.00")) for n in range(COUNT))
    config = _config("bill")
    with serving(tmp_path / "state.db", config, Clock()) as (url, store):
        _queue(store, config, reports)
        summary = _run(url, qb)
        states = store.posting_counts()
    assert summary.stopped == "done", summary
    assert states[PostingState.POSTED] == COUNT and len(qb.bills()) == COUNT
