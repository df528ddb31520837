"""Benchmark: are the Web Connector calls flat as the books grow? (#15)

    python bench/growth.py [--rounds 3] [--history 50000] [--audit 500000] [--session 50] [--list-size 10000]

(a) History. Every SOAP call of a small session (--session reports x 4 lines, 50 postings per message),
    served from a state file that already holds --history posted reports and --audit audit rows, beside
    the same session on a state file with no history (target: each kind of call <= 1.15x). Two sessions
    per side and round: a routine one (QuickBooks lists fresh: the names are re-queried) and one whose
    lists are over 6 hours old (the lists are refreshed whole, then the postings written).

    Both state files start from the same base: a migrated state file after one real warm-up session (10
    reports posted: company file, lists and their refresh stamp known). The big one then gets its history
    by SQL, through the real schema: one real session posts 500 reports x 4 lines into a template state
    file (save_report, plan_and_queue, the Web Connector driver against the QuickBooks simulator), and its
    rows (reports, expenses, postings, posting_txns, qbxml_messages with their full request and answer
    texts, qbxml_message_items, qbwc_sessions) are copied --history/500 times with renamed report IDs and
    shifted ids. Audit rows: the template's rows for the same copies, repeated in turn until there are
    --audit of them (a real history has about 7 per report from posting alone; pulls, watching and notes
    add the rest), hash-chained exactly as ``AuditLog`` chains them so ``audit verify`` holds.

(b) Lists. The largest call of a session whose first act is a full list refresh, when QuickBooks holds
    --list-size vendors and --list-size customers (paged by 500: LIST_PAGE), beside the same session with
    20 of each (target <= 1.5x). Which call was the largest is printed.

Rounds are interleaved (floor, product, ...); min and median of the per-round figures are printed and the
verdict uses the medians. Exits 1 when any measure misses its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _floor import Measure, interleave, report, rounds_argument  # noqa: E402
from serve import (  # noqa: E402
    PASSWORD,
    TODAY,
    USER,
    RecordingConnector,
    Timed,
    _config,
    _label,
    _quickbooks,
    _reports,
)

from mlconnector.models import PostingState  # noqa: E402
from mlconnector.passwords import hash_password  # noqa: E402
from mlconnector.sandbox.quickbooks import QuickBooksSimulator  # noqa: E402
from mlconnector.services.queue import plan_and_queue  # noqa: E402
from mlconnector.soap.server import make_wsgi_app, running_server  # noqa: E402
from mlconnector.soap.session import QbwcService, SessionSettings  # noqa: E402
from mlconnector.soap.work import make_work  # noqa: E402
from mlconnector.soap.work.core import LISTS_REFRESHED_KEY  # noqa: E402
from mlconnector.store import Store  # noqa: E402
from mlconnector.store.reports import save_report  # noqa: E402

LINES = 4
BATCH = 50  # postings per message
TEMPLATE_REPORTS = 500
GENESIS = "0" * 64
PASSWORD_HASH = hash_password(PASSWORD)


def session(path: Path, prefix: str, reports: int, qb: QuickBooksSimulator, *, stale_lists: bool = False,
            ) -> tuple[list[tuple[str, float]], float]:
    """Store and plan ``reports`` new reports in the state file at ``path``, then one Web Connector session.

    Returns each call's name (method and what it carried) and server ms, in order, and the seconds that
    storing and planning the new reports took.
    """
    config = _config(LINES, BATCH * LINES)
    store = Store.open(path)
    began = time.perf_counter()
    for one in _reports(reports, LINES, prefix):
        save_report(store, one)
    plan_and_queue(store, config, today=TODAY)
    planning = time.perf_counter() - began
    if stale_lists:
        store.set_setting(LISTS_REFRESHED_KEY, (store.now() - dt.timedelta(hours=7)).isoformat())
    service = QbwcService(store, make_work(store, config), SessionSettings(username=USER, password_hash=PASSWORD_HASH))
    app = Timed(make_wsgi_app(lambda: service))
    with running_server(app) as srv:
        wc = RecordingConnector(srv.soap_url, USER, PASSWORD, quickbooks=qb.process_request,
                                hcp_response=qb.hcp_response(), noop_delay=0)
        wc.run()
    posted = store.conn.execute("SELECT COUNT(*) FROM postings WHERE report_id LIKE ? AND state = ?",
                                (f"{prefix}%", PostingState.POSTED.value)).fetchone()[0]
    store.close()
    if posted != reports:
        raise SystemExit(f"session {prefix}: {posted} of {reports} reports posted")
    calls: list[tuple[str, float]] = []
    label = ""
    for (method, ms), (_, _, answer) in zip(app.sequence, wc.exchanges):
        if method == "sendRequestXML":
            label = _what(answer)
        calls.append((f"{method} ({label})" if method in ("sendRequestXML", "receiveResponseXML") else method, ms))
    return calls, planning


def _what(answer: bytes) -> str:
    """What a sendRequestXML answer carried: a page of the list refresh, a name check, writes, ..."""
    if b"iterator=" in answer:
        return "lists"
    label = _label(answer)
    return "verify" if label in ("lists", "query") and b"VendorQueryRq" in answer else (label or "nothing")


# ------------------------------------------------------------------------------------------ the history

def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


# For each table copied: column -> SQL expression over the template row (:sfx the report suffix, :po / :mo the
# posting and message id offsets). Other columns are copied as they are.
RENAMES: dict[str, dict[str, str]] = {
    "reports": {"report_id": "report_id || :sfx"},
    "expenses": {"report_id": "report_id || :sfx", "transaction_id": "transaction_id || :sfx"},
    "postings": {"id": "id + :po", "report_id": "report_id || :sfx", "ref_number": "ref_number || :sfx",
                 "txn_id": "txn_id || :sfx", "message_set_id": "message_set_id || :sfx"},
    "posting_txns": {"posting_id": "posting_id + :po", "txn_id": "txn_id || :sfx", "ref_number": "ref_number || :sfx",
                     "ticket_ref": "ticket_ref || :sfx"},
    "qbwc_sessions": {"ticket": "ticket || :sfx"},
    "qbxml_messages": {"id": "id + :mo", "ticket": "ticket || :sfx", "message_set_id": "message_set_id || :sfx"},
    "qbxml_message_items": {"message_id": "message_id + :mo", "posting_id": "posting_id + :po"},
}


def make_template(path: Path) -> None:
    """One real session posting TEMPLATE_REPORTS x LINES into a fresh state file: the rows the history copies."""
    session(path, "H", TEMPLATE_REPORTS, _quickbooks())


def add_history(path: Path, template: Path, reports: int, audit_rows: int) -> dict[str, int]:
    """Copy the template's rows into the state file at ``path`` until it holds ``reports`` more posted
    reports and ``audit_rows`` more audit rows (see the module docstring); returns the table counts."""
    copies = max(1, reports // TEMPLATE_REPORTS)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("ATTACH DATABASE ? AS t", (str(template),))
    conn.execute("BEGIN")
    base_p = conn.execute("SELECT COALESCE(MAX(id), 0) FROM postings").fetchone()[0]
    base_m = conn.execute("SELECT COALESCE(MAX(id), 0) FROM qbxml_messages").fetchone()[0]
    step_p = conn.execute("SELECT MAX(id) FROM t.postings").fetchone()[0]
    step_m = conn.execute("SELECT MAX(id) FROM t.qbxml_messages").fetchone()[0]
    for c in range(copies):
        params = {"sfx": f"-{c:05d}", "po": base_p + c * step_p, "mo": base_m + c * step_m}
        for table, renames in RENAMES.items():
            cols = _columns(conn, table)
            select = ", ".join(renames.get(col, col) for col in cols)
            conn.execute(f"INSERT INTO main.{table} ({', '.join(cols)}) SELECT {select} FROM t.{table}", params)
    # The audit log, chained on from the state file's last row exactly as AuditLog.append_many chains it.
    last = conn.execute("SELECT hash FROM main.audit ORDER BY id DESC LIMIT 1").fetchone()
    prev = last[0] if last else GENESIS
    template_rows = conn.execute(
        "SELECT at, actor, event, report_id, posting_id, detail FROM t.audit ORDER BY id").fetchall()
    batch: list[tuple[Any, ...]] = []
    written = 0
    c = 0
    while written < audit_rows:
        sfx, po = f"-{c % copies:05d}", base_p + (c % copies) * step_p
        for at, actor, event, report_id, posting_id, detail in template_rows:
            if written >= audit_rows:
                break
            rid = report_id + sfx if report_id is not None else None
            pid = posting_id + po if posting_id is not None else None
            row_hash = hashlib.sha256(json.dumps([prev, at, actor, event, rid, pid, detail]).encode("utf-8")).hexdigest()
            batch.append((at, actor, event, rid, pid, detail, prev, row_hash))
            prev = row_hash
            written += 1
        conn.executemany("INSERT INTO main.audit (at, actor, event, report_id, posting_id, detail, prev_hash, hash)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
        batch.clear()
        c += 1
    conn.execute("COMMIT")
    conn.execute("DETACH DATABASE t")
    counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
              for table in ("reports", "postings", "qbxml_messages", "audit")}
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return counts


def _copy(source: Path, dest: Path) -> Path:
    for old in dest.parent.glob(dest.name + "*"):
        old.unlink()
    shutil.copyfile(source, dest)
    return dest


def _by_name(calls: list[tuple[str, float]], tag: str) -> dict[str, float]:
    """Median ms per call name within one session, names prefixed with the session's ``tag``."""
    grouped: dict[str, list[float]] = defaultdict(list)
    for name, ms in calls:
        grouped[f"{tag}: {name}"].append(ms)
    return {name: statistics.median(values) for name, values in grouped.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    rounds_argument(parser, 3)
    parser.add_argument("--history", type=int, default=50_000, help="posted reports already in the big state file")
    parser.add_argument("--audit", type=int, default=500_000, help="audit rows already in the big state file")
    parser.add_argument("--session", type=int, default=50, help="new reports posted by each measured session")
    parser.add_argument("--list-size", type=int, default=10_000, help="vendors and customers in QuickBooks for (b)")
    parser.add_argument("--skip-history", action="store_true", help="only (b)")
    parser.add_argument("--skip-lists", action="store_true", help="only (a)")
    args = parser.parse_args()
    measures: list[Measure] = []

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if not args.skip_history:
            measures += history_measures(tmp, args)
        if not args.skip_lists:
            measures += list_measures(tmp, args)
    return report(measures, title="bench/growth.py — flat as the books grow")


def history_measures(tmp: Path, args: argparse.Namespace) -> list[Measure]:
    began = time.perf_counter()
    base, template, big = tmp / "base.db", tmp / "template.db", tmp / "big.db"
    session(base, "W", 10, _quickbooks())  # warm-up: company file, lists, their stamp
    make_template(template)
    _copy(base, big)
    counts = add_history(big, template, args.history, args.audit)
    size = big.stat().st_size / 2**20
    print(f"(a) history: built in {time.perf_counter() - began:.1f} s: {counts}; state file {size:.0f} MB", flush=True)
    work = tmp / "work.db"
    planning: dict[str, list[float]] = defaultdict(list)

    def side(source: Path, n: int, key: str) -> dict[str, float]:
        figures: dict[str, float] = {}
        for tag, stale in (("routine", False), ("lists stale", True)):
            calls, plan_s = session(_copy(source, work), f"N{n}{tag[0]}", args.session, _quickbooks(),
                                    stale_lists=stale)
            figures.update(_by_name(calls, tag))
            planning[f"{key} {tag}"].append(plan_s)
        return figures

    print(f"{args.session} new reports x {LINES} lines per session, {args.rounds} interleaved rounds "
          "(median server ms per kind of call)", flush=True)
    floors, products = interleave(args.rounds, lambda n: side(base, n, "empty"), lambda n: side(big, n, "big"),
                                  quiet=True)
    for key, values in sorted(planning.items()):
        print(f"  storing + planning {args.session} new reports, {key:18s}: "
              f"median {statistics.median(values) * 1000:.0f} ms (not a call; not judged)")
    history = f"{counts['reports'] - 10:,} reports, {counts['audit']:,} audit rows"
    return [Measure(f"{name} [{history}]", products[name], floors.get(name, []), target=1.15)
            for name in sorted(products) if name in floors]


def list_measures(tmp: Path, args: argparse.Namespace) -> list[Measure]:
    def simulator(size: int) -> QuickBooksSimulator:
        qb = _quickbooks()  # 20 employees as vendors, for the reports' submitters
        for n in range(max(0, size - 20)):
            qb.add_vendor(f"Vendor {n:05d}")
        for n in range(size):
            qb.add_customer(f"Customer {n:05d}")
        return qb

    small, large = simulator(20), simulator(args.list_size)
    largest: dict[str, list[str]] = defaultdict(list)

    def side(qb: QuickBooksSimulator, key: str, n: int) -> dict[str, float]:
        work = tmp / f"lists-{key}.db"
        _copy_nothing(work)
        calls, _ = session(work, f"L{key[0]}{n}-", args.session, qb)
        name, ms = max(calls, key=lambda c: c[1])
        largest[key].append(f"{name} {ms:.0f} ms")
        pages = sum(1 for c, _ in calls if c.startswith("sendRequestXML (lists)"))
        return {"largest": ms, "pages": pages, "calls": len(calls)}

    print(f"(b) lists: {args.list_size:,} vendors + {args.list_size:,} customers vs 20 + 20; {args.rounds} "
          "interleaved rounds", flush=True)
    floors, products = interleave(args.rounds, lambda n: side(small, "small", n), lambda n: side(large, "large", n))
    return [Measure(f"largest call, {args.list_size:,}+{args.list_size:,} vendors/customers vs 20+20",
                    products["largest"], floors["largest"], target=1.5,
                    note=f"{int(products['calls'][0])} calls vs {int(floors['calls'][0])}; largest each round: "
                    f"{', '.join(largest['large'])} (vs {', '.join(largest['small'])})")]


def _copy_nothing(path: Path) -> None:
    for old in path.parent.glob(path.name + "*"):
        old.unlink()


if __name__ == "__main__":
    sys.exit(main())
