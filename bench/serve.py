"""Benchmark: post 500 reports x 4 lines through the Web Connector protocol, over loopback HTTP.

    python bench/serve.py [--reports 500] [--lines 4] [--max-lines 500] [--batch-postings 50]

Two runs against a fresh state file each, driven exactly like the Web Connector (the driver in
``mlconnector.sandbox.webconnector`` with the QuickBooks simulator answering):

1. round trips: with ``max_lines_per_message`` = --max-lines, how many sendRequestXML/receiveResponseXML
   round trips the whole posting takes. Bar (ARCHITECTURE.md): <= ceil(lines / max_lines_per_message) + 2.
2. server time: with messages of --batch-postings postings each, the time the server spends in each SOAP
   call (measured inside the WSGI app, so HTTP client time is excluded). Bar: median under 10 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlconnector.config import parse_config  # noqa: E402
from mlconnector.models import Expense, PostingState, Report  # noqa: E402
from mlconnector.passwords import hash_password  # noqa: E402
from mlconnector.services.queue import plan_and_queue  # noqa: E402
from mlconnector.store.reports import save_report  # noqa: E402
from mlconnector.sandbox.quickbooks import QuickBooksSimulator  # noqa: E402
from mlconnector.sandbox.webconnector import WebConnector  # noqa: E402
from mlconnector.soap.server import make_wsgi_app, running_server  # noqa: E402
from mlconnector.soap.session import QbwcService, SessionSettings  # noqa: E402
from mlconnector.soap.work import make_work  # noqa: E402
from mlconnector.store import Store  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
CATEGORIES = ("Travel Expense", "Meals and Entertainment", "Office Supplies", "Telephone Expense")


def _reports(count: int, lines: int) -> Iterable[Report]:
    for n in range(count):
        expenses = tuple(
            Expense(transaction_id=f"T{n}-{k}", date=dt.date(2026, 3, 1 + k % 27), merchant=f"Merchant {k}",
                    amount=Decimal(f"{10 + (n * 7 + k) % 90}.{k:02d}"), category=CATEGORIES[k % len(CATEGORIES)],
                    tags=("Sales", "Acme Corp:Project X"), billable=k == 0)
            for k in range(lines)
        )
        yield Report(report_id=f"R{n:06d}", name=f"Report {n}", submitter_email=f"emp{n % 20}@example.com",
                     status="Approved", currency="USD", total=sum((e.amount for e in expenses), Decimal("0.00")),
                     expenses=expenses, approved=dt.date(2026, 3, 30))


def _quickbooks() -> QuickBooksSimulator:
    qb = QuickBooksSimulator.seeded()
    for n in range(20):
        qb.add_vendor(f"Employee {n}", email=f"emp{n}@example.com")
    return qb


class Timed:
    """WSGI middleware recording how long the app spends on each SOAP method."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.calls: dict[str, list[float]] = defaultdict(list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("HTTP_SOAPACTION", "").strip('"').rsplit("/", 1)[-1] or "other"
        started = time.perf_counter()
        body = b"".join(self.app(environ, start_response))  # the body is built here, inside the timing
        self.calls[method].append((time.perf_counter() - started) * 1000)
        return [body]


def run(reports: int, lines: int, max_lines: int) -> tuple[Any, Timed, dict[str, int], float]:
    config = parse_config({"quickbooks": {"max_lines_per_txn": max(lines, 1), "max_lines_per_message": max_lines}},
                          environ={})
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "state.db")
        for report in _reports(reports, lines):
            save_report(store, report)
        plan_and_queue(store, config, today=dt.date(2026, 4, 1))
        qb = _quickbooks()
        service = QbwcService(store, make_work(store, config),
                              SessionSettings(username=USER, password_hash=hash_password(PASSWORD)))
        app = Timed(make_wsgi_app(lambda: service))
        started = time.perf_counter()
        with running_server(app) as srv:
            summary = WebConnector(srv.soap_url, USER, PASSWORD, quickbooks=qb.process_request,
                                   hcp_response=qb.hcp_response(), noop_delay=0).run()
        elapsed = time.perf_counter() - started
        counts = {s.value: n for s, n in store.posting_counts().items() if n}
        store.close()
    if len(qb.bills()) != reports:
        raise SystemExit(f"expected {reports} bills in QuickBooks, found {len(qb.bills())}")
    return summary, app, counts, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--max-lines", type=int, default=500)
    parser.add_argument("--batch-postings", type=int, default=50)
    args = parser.parse_args()
    total_lines = args.reports * args.lines

    summary, _, counts, elapsed = run(args.reports, args.lines, args.max_lines)
    bar = math.ceil(total_lines / args.max_lines) + 2
    print(f"reports: {args.reports} x {args.lines} lines = {total_lines} lines; max_lines_per_message {args.max_lines}")
    print(f"round trips: {summary.round_trips} (bar <= {bar}: {'ok' if summary.round_trips <= bar else 'MISSED'});"
          f" postings: {counts}; wall time {elapsed:.2f} s")

    summary, timed, counts, elapsed = run(args.reports, args.lines, args.batch_postings * args.lines)
    every = [ms for calls in timed.calls.values() for ms in calls]
    heavy = timed.calls["sendRequestXML"] + timed.calls["receiveResponseXML"]
    median = statistics.median(every)
    print(f"server time per SOAP call, {args.batch_postings} postings per message, {len(every)} calls:"
          f" median {median:.2f} ms (bar < 10 ms: {'ok' if median < 10 else 'MISSED'});"
          f" sendRequestXML/receiveResponseXML median {statistics.median(heavy):.2f} ms, max {max(heavy):.2f} ms")
    for method, calls in sorted(timed.calls.items()):
        print(f"  {method:20s} n={len(calls):3d} median {statistics.median(calls):7.2f} ms  max {max(calls):7.2f} ms")
    return 0 if counts == {PostingState.POSTED.value: args.reports} else 1


if __name__ == "__main__":
    sys.exit(main())
