"""Benchmark: pull 10,000 reports with 100,000 expenses from the local Expensify simulator.

    python bench/pull.py [--reports 10000] [--expenses 10] [--tracemalloc]

The simulator runs in a child process so that the figures are those of the pulling process alone:
wall time of ``pull_reports`` (export, download, parse, store into a temporary state file) and peak
memory (``ru_maxrss`` of this process; with ``--tracemalloc`` also the Python heap peak, which
slows the run down). Bars (ARCHITECTURE.md): under 30 s and under 300 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlconnector.config import Config, ExpensifyConfig, Secret  # noqa: E402
from mlconnector.expensify.client import ExpensifyClient  # noqa: E402
from mlconnector.services.pull import pull_reports  # noqa: E402
from mlconnector.store import Store  # noqa: E402


def _serve(reports: int, expenses: int, queue: Any, stop: Any) -> None:
    from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports

    with ExpensifySimulator(demo_reports(reports, expenses), not_ready_polls=1) as sim:
        queue.put((sim.url, sim.partner_user_id, sim.partner_user_secret))
        stop.wait()


def _max_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--expenses", type=int, default=10, help="expenses per report")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    parser.add_argument("--plan", action="store_true",
                        help="also time planning, which `mlconnector pull` runs after storing (not part of the bar)")
    args = parser.parse_args()

    ctx = multiprocessing.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_serve, args=(args.reports, args.expenses, queue, stop), daemon=True)
    started = time.perf_counter()
    child.start()
    url, user, secret = queue.get(timeout=300)
    print(f"simulator ready with {args.reports:,} reports / {args.reports * args.expenses:,} expenses "
          f"in {time.perf_counter() - started:.1f} s (child process)")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(Path(tmp) / "state.db")
            config = Config(expensify=ExpensifyConfig(partner_user_id=user, partner_user_secret=Secret(secret),
                                                      url=url, start_date=dt.date(2026, 1, 1)))
            client = ExpensifyClient(user, secret, url, poll_delay=0.5)
            if args.tracemalloc:
                tracemalloc.start()
            began = time.perf_counter()
            summary = pull_reports(store, client, config, until=dt.date(2026, 12, 31))
            wall = time.perf_counter() - began
            heap = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
            plan_note = ""
            if args.plan:
                from mlconnector.services.queue import plan_and_queue

                began = time.perf_counter()
                planned = plan_and_queue(store, config, today=dt.date(2026, 12, 31))
                plan_note = (f"planning: {time.perf_counter() - began:.1f} s for {len(summary.new):,} reports"
                             f" ({len(planned.queued):,} queued, {len(planned.blocked_reports):,} blocked)")
            stored = store.conn.execute(
                "SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM expenses)").fetchone()
            size = sum(p.stat().st_size for p in Path(tmp).glob("state.db*")) / 2**20
            client.close()
            store.close()
    finally:
        stop.set()
        child.join(timeout=10)
    print(f"pulled: {len(summary.new):,} new, {len(summary.invalid)} invalid; stored {stored[0]:,} reports, "
          f"{stored[1]:,} expenses; state file {size:.0f} MB")
    note = " — inflated by tracemalloc; run without --tracemalloc for the time" if args.tracemalloc else ""
    print(f"wall time: {wall:.1f} s (bar 30 s){note}")
    if args.plan:
        print(plan_note)
    print(f"peak memory: {_max_rss_mb():.0f} MB max RSS (bar 300 MB)"
          + (f"; Python heap peak {heap:.0f} MB (tracemalloc)" if heap is not None else ""))
    ok = (args.tracemalloc or wall < 30) and _max_rss_mb() < 300 and stored[1] == args.reports * args.expenses
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
