"""Benchmark: the Expensify calls a routine pull makes for N watched reports (posted, not yet reimbursed).

    python bench/watch.py [--counts 100 1000 5000]

For each N: the local Expensify simulator holds N reports, all stored and posted (a bill each) as of
yesterday's pull; then one routine `pull` runs, with watching on (``watch_days = 90``) and, as the floor
in the same run, off (``watch_days = 0``). The simulator enforces Expensify's rate limits (5 per 10 s,
20 per 60 s) on a fake clock the client shares, so "waits" is the time the real pull would spend paced
(never 429s: the client paces itself). Prints calls by kind, the simulated pacing time, and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlconnector.config import Config, ExpensifyConfig, Secret  # noqa: E402
from mlconnector.models import PlannedPosting, PostingMode, PostingState  # noqa: E402
from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports  # noqa: E402
from mlconnector.services.pull import LAST_PULL_SETTING, pull_reports  # noqa: E402
from mlconnector.store import Store  # noqa: E402
from mlconnector.store.postings import Move, add_posting, transition_many  # noqa: E402
from tests.sim_helpers import FakeClock, make_client  # noqa: E402

RATE_LIMITS = ((5, 10.0), (20, 60.0))


def _config(sim: ExpensifySimulator, watch_days: int) -> Config:
    return Config(expensify=ExpensifyConfig(
        partner_user_id=sim.partner_user_id, partner_user_secret=Secret(sim.partner_user_secret), url=sim.url,
        start_date=dt.date(2026, 1, 1), watch_days=watch_days, mark_exported=False))


def _posted_store(path: Path, sim: ExpensifySimulator) -> Store:
    """Every report pulled once and posted as a bill, as after yesterday's pull and update."""
    store = Store.open(path)
    with make_client(sim, FakeClock()) as client:
        summary = pull_reports(store, client, _config(sim, 0))
    with store.atomic():
        ids = []
        for report_id in summary.new:
            ids.append(add_posting(store, PlannedPosting(
                report_id=report_id, part=1, part_count=1, mode=PostingMode.BILL, ref_number=report_id,
                txn_date=dt.date(2026, 3, 1), vendor="V", account="Accounts Payable", lines=()),
                state=PostingState.QUEUED, report_fingerprint="", actor="bench"))
        transition_many(store, [Move(i, PostingState.SENT) for i in ids], actor="bench")
        transition_many(store, [Move(i, PostingState.POSTED, {"txn_id": f"T{i}"}) for i in ids], actor="bench")
        store.set_setting(LAST_PULL_SETTING, (store.now().date() - dt.timedelta(days=1)).isoformat())
    return store


def _routine_pull(store: Store, sim: ExpensifySimulator, watch_days: int) -> tuple[Counter[str], float, int]:
    clock = FakeClock()
    sim.clock = clock
    sim.rate_limits = RATE_LIMITS
    sim.requests = []  # the limits count served requests on this clock only
    with make_client(sim, clock) as client:
        summary = pull_reports(store, client, _config(sim, watch_days))
    calls = Counter(r.job_type for r in sim.requests)
    return calls, sum(clock.slept), len(summary.watched)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 1000, 5000])
    args = parser.parse_args()
    print(f"{'watched':>8} {'calls (floor: no watching)':>28} {'calls watching':>22} {'ratio':>6} "
          f"{'paced s (floor)':>16} {'paced s':>8}")
    for n in args.counts:
        with tempfile.TemporaryDirectory() as tmp, ExpensifySimulator(
                demo_reports(n, 3), not_ready_polls=1, rate_limits=()) as sim:
            store = _posted_store(Path(tmp) / "state.db", sim)
            try:
                floor, floor_wait, _ = _routine_pull(store, sim, 0)
                calls, wait, watched = _routine_pull(store, sim, 90)
            finally:
                store.close()
        total_floor, total = sum(floor.values()), sum(calls.values())
        describe = ", ".join(f"{k} {v}" for k, v in sorted(calls.items()))
        print(f"{watched:>8} {total_floor:>28} {total:>10} ({describe}) {total / total_floor:>5.1f}× "
              f"{floor_wait:>16.1f} {wait:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
