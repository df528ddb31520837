"""Benchmark: pull 10,000 reports with 100,000 expenses from the local Expensify simulator, beside floors (#15).

    python bench/pull.py [--rounds 3] [--reports 10000] [--expenses 10] [--tracemalloc]

The simulator runs in a child process; each pull runs in a fresh child process of its own (spawned), into
a fresh temporary state file, so that its figures are those of the pull alone. Figures, each beside a floor
measured in the same run, in interleaved rounds (floor, product, floor, product, ...):

1. storing the download: the time ``pull_reports`` spends after the export file is downloaded (parse,
   validate, store; timed from its ``progress`` events to its return). Floor: the same downloaded file
   read with ``json.loads`` per line and its rows written with ``executemany`` into a fresh SQLite file
   with the same ``reports``/``expenses`` tables (their DDL is copied from a migrated state file), same
   pragmas, in ONE transaction. Target <= 3x.
2. planning the stored reports (``plan_and_queue``, as ``mlconnector pull`` runs it after storing).
   Floor: a minimal loop reading the same rows (SELECT of the reports and of their expenses, building
   nothing), on the same state file. Target <= 10x.
3. peak memory of the pull: ``VmHWM`` of the child process after ``pull_reports`` (before planning).
   Target <= 60 MB.

The whole pull's wall time (export, download included) is printed too. ``--tracemalloc`` also measures the
Python heap peak of the pull (and slows it down: the times are then not judged).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import IO, Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import Measure, interleave, peak_rss_mb, report, rounds_argument  # noqa: E402
from mlconnector.config import Config, ExpensifyConfig, Secret  # noqa: E402
from mlconnector.expensify.client import ExpensifyClient  # noqa: E402
from mlconnector.services.pull import pull_reports  # noqa: E402
from mlconnector.store import Store  # noqa: E402

UNTIL = dt.date(2026, 12, 31)


def _serve(reports: int, expenses: int, queue: Any, stop: Any) -> None:
    from mlconnector.sandbox.expensify import ExpensifySimulator, demo_reports

    with ExpensifySimulator(demo_reports(reports, expenses), not_ready_polls=1) as sim:
        queue.put((sim.url, sim.partner_user_id, sim.partner_user_secret))
        stop.wait()


class KeepingClient(ExpensifyClient):
    """The Expensify client, also copying each downloaded export file to ``keep`` (after the download)."""

    def __init__(self, *args: Any, keep: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keep = keep
        self.kept: list[str] = []

    def download(self, file_name: str, dest: IO[bytes], *, on_bytes: Callable[[int], None] | None = None) -> int:
        size = super().download(file_name, dest, on_bytes=on_bytes)
        path = self.keep / f"export-{len(self.kept)}.txt"
        dest.flush()
        position = dest.tell()
        dest.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(dest, out)
        dest.seek(position)
        self.kept.append(str(path))
        return size


class StoreTimer:
    """A ``progress`` callback that adds up the time between the end of each download and the next export."""

    def __init__(self) -> None:
        self.state = "net"
        self.started = 0.0
        self.storing = 0.0

    def __call__(self, stage: str, completed: int, total: int | None) -> None:
        now = time.perf_counter()
        if stage in ("wait", "download"):
            self.state = "downloading"
        elif stage == "export" and self.state == "downloading":  # the file is in: storing starts
            self.state, self.started = "storing", now
        elif stage == "export" and self.state == "storing":  # the next export: storing ended
            self.state, self.storing = "net", self.storing + now - self.started

    def finish(self) -> float:
        if self.state == "storing":
            self.state, self.storing = "net", self.storing + time.perf_counter() - self.started
        return self.storing


def _pull_child(url: str, user: str, secret: str, keep: str, traced: bool, out: Any) -> None:
    """In a fresh process: the pull (timed), then the planning floor and planning, on a temporary state file."""
    from mlconnector.services.queue import plan_and_queue

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "state.db")
        config = Config(expensify=ExpensifyConfig(partner_user_id=user, partner_user_secret=Secret(secret),
                                                  url=url, start_date=dt.date(2026, 1, 1)))
        client = KeepingClient(user, secret, url, poll_delay=0.5, keep=Path(keep))
        timer = StoreTimer()
        if traced:
            tracemalloc.start()
        began = time.perf_counter()
        summary = pull_reports(store, client, config, until=UNTIL, progress=timer)
        wall = time.perf_counter() - began
        storing = timer.finish()
        heap = tracemalloc.get_traced_memory()[1] / 2**20 if traced else float("nan")
        tracemalloc.stop()
        peak = peak_rss_mb()
        client.close()
        stored = store.conn.execute(
            "SELECT (SELECT COUNT(*) FROM reports), (SELECT COUNT(*) FROM expenses)").fetchone()
        size = sum(p.stat().st_size for p in Path(tmp).glob("state.db*")) / 2**20
        read_floor = _read_rows(Path(tmp) / "state.db")
        began = time.perf_counter()
        planned = plan_and_queue(store, config, today=UNTIL)
        planning = time.perf_counter() - began
        store.close()
    out.put({"wall": wall, "storing": storing, "peak": peak, "heap": heap, "reports": stored[0],
             "expenses": stored[1], "size": size, "new": len(summary.new), "invalid": len(summary.invalid),
             "planning": planning, "plan_floor": read_floor, "queued": len(planned.queued),
             "blocked": len(planned.blocked_reports), "files": client.kept})


def _read_rows(path: Path) -> float:
    """The planning floor: read every stored report and its expenses, build nothing; seconds."""
    conn = sqlite3.connect(str(path))
    began = time.perf_counter()
    ids = [row[0] for row in conn.execute("SELECT report_id FROM reports ORDER BY report_id")]
    for report_id in ids:
        conn.execute("SELECT * FROM reports WHERE report_id = ?", (report_id,)).fetchone()
        conn.execute("SELECT * FROM expenses WHERE report_id = ? ORDER BY position", (report_id,)).fetchall()
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed


def _store_floor_child(files: list[str], out: Any) -> None:
    """In a fresh process: the storing floor over the same downloaded files; seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        schema = Store.open(Path(tmp) / "schema.db")  # the DDL of the real tables, as migrated
        ddl = [row[0] for row in schema.conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN ('reports', 'expenses')")]
        schema.close()
        conn = sqlite3.connect(str(Path(tmp) / "floor.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        for statement in ddl:
            conn.execute(statement)
        now = dt.datetime.now(dt.timezone.utc).isoformat()
        began = time.perf_counter()
        reports: list[tuple[Any, ...]] = []
        expenses: list[tuple[Any, ...]] = []
        for name in files:
            with open(name, "rb") as lines:
                for line in lines:
                    if not line.strip():
                        continue
                    data = json.loads(line)
                    if "reportID" not in data:
                        continue  # the trailer
                    rid = data["reportID"]
                    reports.append((rid, data.get("reportName", ""), data.get("accountEmail", ""),
                                    data.get("submitterName", ""), data.get("status", ""), data.get("currency", ""),
                                    data.get("total") or 0, data.get("policyID", ""), data.get("policyName", ""),
                                    data.get("created"), data.get("submitted"), data.get("approved"), "", now, now))
                    expenses.extend(
                        (rid, n, e.get("transactionID"), (e.get("created") or "")[:10], e.get("merchant", ""),
                         e.get("amount") or 0, e.get("currency", ""), e.get("category", ""),
                         json.dumps([e.get("tag", "")]), e.get("comment", ""), int(bool(e.get("reimbursable"))),
                         int(bool(e.get("billable"))), "", e.get("receiptURL") or "")
                        for n, e in enumerate(data.get("expenses") or [], 1))
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO reports (report_id, name, submitter_email, submitter_name, status, currency, total_cents,"
            " policy_id, policy_name, created, submitted, approved, fingerprint, first_pulled_at, last_pulled_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", reports)
        conn.executemany(
            "INSERT INTO expenses (report_id, position, transaction_id, date, merchant, amount_cents, currency,"
            " category, tags, comment, reimbursable, billable, card, receipt_url)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", expenses)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - began
        count = conn.execute("SELECT COUNT(*) FROM expenses").fetchone()[0]
        conn.close()
    out.put({"storing": elapsed, "expenses": count})


def _in_child(ctx: Any, target: Callable[..., None], *args: Any) -> dict[str, Any]:
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, queue))
    child.start()
    result: dict[str, Any] = queue.get(timeout=900)
    child.join(timeout=60)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    rounds_argument(parser, 3)
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--expenses", type=int, default=10, help="expenses per report")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the Python heap peak (slower)")
    args = parser.parse_args()
    total = args.reports * args.expenses

    ctx = multiprocessing.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    sim = ctx.Process(target=_serve, args=(args.reports, args.expenses, queue, stop), daemon=True)
    started = time.perf_counter()
    sim.start()
    url, user, secret = queue.get(timeout=300)
    print(f"simulator ready with {args.reports:,} reports / {total:,} expenses "
          f"in {time.perf_counter() - started:.1f} s (child process); {args.rounds} interleaved rounds", flush=True)
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as keep:
            first = _in_child(ctx, _pull_child, url, user, secret, str(keep), False)  # untimed: the file to floor
            files = list(first["files"])
            if first["expenses"] != total:
                raise SystemExit(f"stored {first['expenses']:,} expenses of {total:,}")

            def floor(n: int) -> dict[str, float]:
                got = _in_child(ctx, _store_floor_child, files)
                if got["expenses"] != total:
                    raise SystemExit(f"the floor stored {got['expenses']:,} expenses of {total:,}")
                return {"storing s": got["storing"]}

            def product(n: int) -> dict[str, float]:
                with tempfile.TemporaryDirectory() as again:
                    got = _in_child(ctx, _pull_child, url, user, secret, again, args.tracemalloc)
                results.append(got)
                return {"storing s": got["storing"], "wall s": got["wall"], "plan floor s": got["plan_floor"],
                        "planning s": got["planning"], "peak MB": got["peak"]}

            floors, products = interleave(args.rounds, floor, product)
    finally:
        stop.set()
        sim.join(timeout=10)
    last = results[-1]
    print(f"\npulled: {last['new']:,} new, {last['invalid']} invalid; stored {last['reports']:,} reports, "
          f"{last['expenses']:,} expenses; state file {last['size']:.0f} MB; whole pull (export, download, store) "
          f"{min(products['wall s']):.1f} / {sorted(products['wall s'])[len(products['wall s']) // 2]:.1f} s "
          f"(min / median); planning queued {last['queued']:,}, blocked {last['blocked']:,}")
    if args.tracemalloc:
        print(f"Python heap peak of the pull (tracemalloc): {max(r['heap'] for r in results):.0f} MB; "
              "times inflated by tracemalloc")
    measures = [
        Measure(f"storing a {total:,}-expense download (s)", products["storing s"], floors["storing s"], target=3,
                unit="s", note="floor: json.loads per line + executemany into the same tables, one transaction"),
        Measure(f"planning {args.reports:,} stored reports (s)", products["planning s"], products["plan floor s"],
                target=10, unit="s", note="floor: SELECT each report and its expenses, building nothing "
                "(measured in the same child, just before planning)"),
        Measure(f"peak memory of the pull ({args.reports:,} reports)", products["peak MB"], target=60, kind="limit",
                unit="MB", note="VmHWM of the pulling child after pull_reports, before planning"),
    ]
    if args.tracemalloc:
        measures = measures[2:]
    return report(measures, title="bench/pull.py — storing and planning a large pull")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
