"""Benchmark: post 500 reports x 4 lines through the Web Connector protocol, beside a trivial SOAP service (#15).

    python bench/serve.py [--rounds 5] [--reports 500] [--lines 4] [--max-lines 500] [--batch-postings 50]
                          [--no-memory]

Driven exactly like the Web Connector (the driver in ``mlconnector.sandbox.webconnector``, the QuickBooks
simulator answering), over loopback HTTP, a fresh state file each session. Figures, each beside its floor:

1. round trips: with ``max_lines_per_message`` = --max-lines, the sendRequestXML/receiveResponseXML round
   trips of the whole posting, against ceil(lines / max_lines) (target: at most 2 more).
2. server time per sendRequestXML carrying --batch-postings postings, and per receiveResponseXML taking
   their answers, measured inside the WSGI app (``Timed``; HTTP client time excluded). Floor: a trivial
   Spyne ``Application`` with the same two ``@rpc`` signatures as ``mlconnector/soap/service.py`` that
   returns a request captured from the product run (the same bytes) and takes the same answer bodies,
   wrapped in Spyne's plain ``WsgiApplication`` on the same cheroot server (``running_server``), timed by
   the same middleware, called with the same envelopes. Target: <= 3x.
3. the slowest call of the whole session against its median call (target <= 3x; the list refresh and
   authenticate are counted, and which call was the slowest is printed).
4. peak memory (``VmHWM``, Linux) of a real ``mlconnector serve`` child process serving one such
   session (target <= 80 MB).

Rounds are interleaved (floor, product, floor, product, ...); min and median of the rounds are printed
and the verdict uses the medians. Exits 1 when any measure misses its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from _floor import Measure, interleave, median_of, peak_rss_mb, report, rounds_argument  # noqa: E402
from mlconnector.config import Config, load_config, parse_config  # noqa: E402
from mlconnector.models import Expense, PostingState, Report  # noqa: E402
from mlconnector.passwords import hash_password  # noqa: E402
from mlconnector.sandbox.quickbooks import QuickBooksSimulator  # noqa: E402
from mlconnector.sandbox.webconnector import TNS, WebConnector  # noqa: E402
from mlconnector.services.queue import plan_and_queue  # noqa: E402
from mlconnector.soap.server import make_wsgi_app, running_server  # noqa: E402
from mlconnector.soap.session import QbwcService, SessionSettings  # noqa: E402
from mlconnector.soap.work import make_work  # noqa: E402
from mlconnector.store import Store  # noqa: E402
from mlconnector.store.reports import save_report  # noqa: E402

# After the package's service module: it makes Spyne importable on this Python.
from spyne import Application, Integer32, ServiceBase, Unicode, rpc  # noqa: E402
from spyne.protocol.soap import Soap11  # noqa: E402
from spyne.server.wsgi import WsgiApplication  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
CATEGORIES = ("Travel Expense", "Meals and Entertainment", "Office Supplies", "Telephone Expense")
TODAY = dt.date(2026, 4, 1)


def _reports(count: int, lines: int, prefix: str = "R") -> Iterable[Report]:
    for n in range(count):
        expenses = tuple(
            Expense(transaction_id=f"T{prefix}{n}-{k}", date=dt.date(2026, 3, 1 + k % 27), merchant=f"Merchant {k}",
                    amount=Decimal(f"{10 + (n * 7 + k) % 90}.{k:02d}"), category=CATEGORIES[k % len(CATEGORIES)],
                    tags=("Sales", "Acme Corp:Project X"), billable=k == 0)
            for k in range(lines)
        )
        yield Report(report_id=f"{prefix}{n:06d}", name=f"Report {n}", submitter_email=f"emp{n % 20}@example.com",
                     status="Approved", currency="USD", total=sum((e.amount for e in expenses), Decimal("0.00")),
                     expenses=expenses, approved=dt.date(2026, 3, 30))


def _quickbooks() -> QuickBooksSimulator:
    qb = QuickBooksSimulator.seeded()
    for n in range(20):
        qb.add_vendor(f"Employee {n}", email=f"emp{n}@example.com")
    return qb


class Timed:
    """WSGI middleware recording how long the app spends on each SOAP call, in call order."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.sequence: list[tuple[str, float]] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("HTTP_SOAPACTION", "").strip('"').rsplit("/", 1)[-1] or "other"
        started = time.perf_counter()
        inner = self.app(environ, start_response)
        body = b"".join(inner)  # the body is built here, inside the timing
        self.sequence.append((method, (time.perf_counter() - started) * 1000))
        # The app's close() (housekeeping after the answer) runs when the server has sent the body, as in
        # production; it is not part of the call, but a next call that has to wait for it is.
        return _Closing([body], getattr(inner, "close", None))


class _Closing(list[bytes]):
    def __init__(self, body: list[bytes], close: Callable[[], Any] | None) -> None:
        super().__init__(body)
        self._close = close

    def close(self) -> None:
        if self._close is not None:
            self._close()


class RecordingConnector(WebConnector):
    """The Web Connector driver, keeping every envelope it sent and every body it got back (client side)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[tuple[str, bytes, bytes]] = []

    def post(self, method: str, body: bytes) -> requests.Response:
        response = super().post(method, body)
        self.exchanges.append((method, body, response.content))
        return response


@dataclass
class Call:
    method: str
    label: str  # what it carried: "write 50", "lists", "query", "" ...
    ms: float
    sent: bytes
    answer: bytes

    @property
    def name(self) -> str:
        return f"{self.method} ({self.label})" if self.label else self.method


@dataclass
class Session:
    calls: list[Call] = field(default_factory=list)
    round_trips: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    bills: int = 0


def _label(answer: bytes) -> str:
    writes = answer.count(b"BillAddRq") // 2
    if writes:
        return f"write {writes}"
    if b"VendorQueryRq" in answer and b"AccountQueryRq" in answer:
        return "lists"
    if b"QBXMLMsgsRq" in answer:
        return "query"
    return ""


def _config(lines: int, max_lines: int) -> Config:
    return parse_config({"quickbooks": {"max_lines_per_txn": max(lines, 1), "max_lines_per_message": max_lines}},
                        environ={})


def product_session(reports: int, lines: int, max_lines: int) -> Session:
    """One Web Connector session posting ``reports`` x ``lines`` into a fresh state file (set-up untimed)."""
    config = _config(lines, max_lines)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "state.db")
        for one in _reports(reports, lines):
            save_report(store, one)
        plan_and_queue(store, config, today=TODAY)
        qb = _quickbooks()
        service = QbwcService(store, make_work(store, config),
                              SessionSettings(username=USER, password_hash=hash_password(PASSWORD)))
        app = Timed(make_wsgi_app(lambda: service))
        with running_server(app) as srv:
            wc = RecordingConnector(srv.soap_url, USER, PASSWORD, quickbooks=qb.process_request,
                                    hcp_response=qb.hcp_response(), noop_delay=0)
            summary = wc.run()
        counts = {s.value: n for s, n in store.posting_counts().items() if n}
        store.close()
    if len(app.sequence) != len(wc.exchanges):
        raise SystemExit(f"timed {len(app.sequence)} calls but the driver made {len(wc.exchanges)}")
    session = Session(round_trips=summary.round_trips, counts=counts, bills=len(qb.bills()))
    label = ""
    for (method, ms), (sent_method, sent, answer) in zip(app.sequence, wc.exchanges):
        if method != sent_method:
            raise SystemExit(f"call order differs: server {method}, driver {sent_method}")
        if method == "sendRequestXML":
            label = _label(answer)
        session.calls.append(Call(method, label if method in ("sendRequestXML", "receiveResponseXML") else "",
                                  ms, sent, answer))
    if session.bills != reports or counts != {PostingState.POSTED.value: reports}:
        raise SystemExit(f"expected {reports} bills posted, found {session.bills} in QuickBooks; postings {counts}")
    return session


# --------------------------------------------------------------------------------------------- the floor

_In = Unicode(min_occurs=0)
_Out = Unicode(min_occurs=0, nillable=False)
_Int = Integer32(min_occurs=1, nillable=False)
FLOOR_ANSWER = {"request": ""}  # what the floor's sendRequestXML returns: set to a captured product request


class FloorService(ServiceBase):  # type: ignore[misc]
    """The two heavy Web Connector operations with the product's WSDL signatures, doing nothing."""

    @rpc(_In, _In, _In, _In, _Int, _Int, _returns=_Out)  # type: ignore[misc, untyped-decorator, unused-ignore]
    def sendRequestXML(  # noqa: N802
        ctx: Any, ticket: str | None, strHCPResponse: str | None, strCompanyFileName: str | None,  # noqa: N803
        qbXMLCountry: str | None, qbXMLMajorVers: int | None, qbXMLMinorVers: int | None,  # noqa: N803
    ) -> str:
        return FLOOR_ANSWER["request"]

    @rpc(_In, _In, _In, _In, _returns=_Int)  # type: ignore[misc, untyped-decorator, unused-ignore]
    def receiveResponseXML(  # noqa: N802
        ctx: Any, ticket: str | None, response: str | None, hresult: str | None, message: str | None
    ) -> int:
        return 100 if response else -1


def floor_app() -> Any:
    """The floor: a minimal Spyne application, same protocol options as the product, plain WsgiApplication."""
    application = Application(
        [FloorService], tns=TNS, name="FloorSvc",
        in_protocol=Soap11(validator=None, resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False),
        out_protocol=Soap11(),
    )
    return WsgiApplication(application, max_content_length=10 * 1024 * 1024)


def floor_calls(url: str, app: Timed, sends: list[bytes], receives: list[bytes]) -> tuple[list[float], list[float]]:
    """Replay the product's envelopes against the floor; its server times for each kind of call."""
    wc = WebConnector(url, USER, PASSWORD)
    app.sequence.clear()
    for send, receive in zip(sends, receives):
        for method, body in (("sendRequestXML", send), ("receiveResponseXML", receive)):
            response = wc.post(method, body)
            if response.status_code != 200 or (method == "sendRequestXML" and
                                               len(response.content) < len(FLOOR_ANSWER["request"])):
                raise SystemExit(f"the floor answered {method} with HTTP {response.status_code}")
    out: dict[str, list[float]] = {"sendRequestXML": [], "receiveResponseXML": []}
    for method, ms in app.sequence:
        out[method].append(ms)
    return out["sendRequestXML"], out["receiveResponseXML"]


# ---------------------------------------------------------------------------------- serve's peak memory

def serve_peak_mb(reports: int, lines: int) -> tuple[float, int]:
    """Max RSS of a real ``mlconnector serve`` child serving one session of ``reports`` x ``lines``."""
    env = {**os.environ, "MLCONNECTOR_QBWC_PASSWORD": "Pw123456", "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    with tempfile.TemporaryDirectory() as home:
        env["MLCONNECTOR_HOME"] = home
        subprocess.run([sys.executable, "-m", "mlconnector", "init", "--non-interactive"], env=env, check=True,
                       capture_output=True)
        config = load_config(Path(home) / "config.toml", environ=env)
        store = Store.open(Path(home) / "state.db")
        for one in _reports(reports, lines):
            save_report(store, one)
        plan_and_queue(store, config, today=TODAY)
        store.close()
        child = subprocess.Popen([sys.executable, "-m", "mlconnector", "serve", "--port", "0"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            found = re.search(r"https?://[\d.]+:\d+/qbwc", line)
            if not found:
                raise SystemExit(f"mlconnector serve did not start: {line}{child.stdout.read()}")
            qb = _quickbooks()
            summary = WebConnector(found.group(0), config.qbwc.username, "Pw123456", quickbooks=qb.process_request,
                                   hcp_response=qb.hcp_response(), noop_delay=0).run()
            peak = peak_rss_mb(child.pid)  # VmHWM: see peak_rss_mb for why not the child's ru_maxrss
        finally:
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
        if len(qb.bills()) != reports:
            raise SystemExit(f"mlconnector serve posted {len(qb.bills())} bills of {reports} ({summary.stopped})")
    return peak, summary.round_trips


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    rounds_argument(parser, 5)
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--max-lines", type=int, default=500, help="max_lines_per_message for the round trips")
    parser.add_argument("--batch-postings", type=int, default=50, help="postings per message for the timings")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory of `mlconnector serve`")
    args = parser.parse_args()
    total_lines = args.reports * args.lines
    measures: list[Measure] = []

    # 1. round trips (deterministic: one session)
    trips = product_session(args.reports, args.lines, args.max_lines).round_trips
    least = math.ceil(total_lines / args.max_lines)
    measures.append(Measure(f"round trips, {args.reports}x{args.lines} lines, {args.max_lines} lines/message",
                            [trips], [least], target=2, kind="plus", unit=""))

    # 2./3. server times, interleaved with the floor
    print(f"{args.reports} reports x {args.lines} lines, {args.batch_postings} postings per message; "
          f"{args.rounds} interleaved rounds (server ms per call, median of the round)", flush=True)
    capture = product_session(args.reports, args.lines, args.batch_postings * args.lines)
    write = f"write {args.batch_postings}"
    sends = [c.sent for c in capture.calls if c.method == "sendRequestXML" and c.label == write]
    receives = [c.sent for c in capture.calls if c.method == "receiveResponseXML" and c.label == write]
    if not sends:
        raise SystemExit(f"no sendRequestXML carried {args.batch_postings} postings")
    answer = next(c.answer for c in capture.calls if c.method == "sendRequestXML" and c.label == write)
    FLOOR_ANSWER["request"] = _result_text(answer, "sendRequestXML")  # the qbXML the product sent
    floor_timed = Timed(floor_app())
    sessions: list[Session] = []

    with running_server(floor_timed) as floor_srv:
        floor_calls(floor_srv.soap_url, floor_timed, sends[:1], receives[:1])  # warm up Spyne's floor app

        def floor(_: int) -> dict[str, float]:
            send_ms, receive_ms = floor_calls(floor_srv.soap_url, floor_timed, sends, receives)
            return {"send": statistics.median(send_ms), "receive": statistics.median(receive_ms)}

        def product(_: int) -> dict[str, float]:
            session = product_session(args.reports, args.lines, args.batch_postings * args.lines)
            sessions.append(session)
            every = [c.ms for c in session.calls]
            return {"send": median_of([c.ms for c in session.calls
                                       if c.method == "sendRequestXML" and c.label == write]),
                    "receive": median_of([c.ms for c in session.calls
                                          if c.method == "receiveResponseXML" and c.label == write]),
                    "slowest/median": max(every) / statistics.median(every)}

        floors, products = interleave(args.rounds, floor, product)

    measures.append(Measure(f"sendRequestXML, {args.batch_postings} postings (server ms)", products["send"],
                            floors["send"], note=f"floor returns the same {len(FLOOR_ANSWER['request']):,}-char "
                            "request from a trivial Spyne service"))
    measures.append(Measure(f"receiveResponseXML, {args.batch_postings} answers (server ms)", products["receive"],
                            floors["receive"], note=f"floor takes the same {len(receives[0]):,}-byte envelope"))
    slowest = [max(s.calls, key=lambda c: c.ms) for s in sessions]
    medians = [statistics.median(c.ms for c in s.calls) for s in sessions]
    which = ", ".join(f"{c.name} {c.ms:.1f} ms" for c in slowest)
    measures.append(Measure(f"slowest call / median call, {args.reports}x{args.lines} session",
                            [c.ms for c in slowest], medians, note=f"slowest call of each round: {which}"))

    print("\nper call kind, all rounds (server ms):")
    kinds: dict[str, list[float]] = {}
    for s in sessions:
        for c in s.calls:
            kinds.setdefault(c.name, []).append(c.ms)
    for name, values in sorted(kinds.items()):
        print(f"  {name:36s} n={len(values):4d}  min {min(values):8.2f}  median {statistics.median(values):8.2f}"
              f"  max {max(values):8.2f}")
    lists = kinds.get("receiveResponseXML (lists)", []) + kinds.get("sendRequestXML (lists)", [])
    if lists:
        print(f"  the list refresh (both calls, counted above): median {statistics.median(lists):.2f} ms, "
              f"max {max(lists):.2f} ms")

    # 4. peak memory of the real server
    if not args.no_memory:
        peak, serve_trips = serve_peak_mb(args.reports, args.lines)
        measures.append(Measure(f"peak memory, mlconnector serve ({args.reports}x{args.lines}, "
                                f"{serve_trips} round trips)", [peak], target=80, kind="limit", unit="MB"))
    print(f"\n(usage of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB max RSS)")
    return report(measures, title="bench/serve.py — server side of the Web Connector protocol")


def _result_text(answer: bytes, method: str) -> str:
    from lxml import etree

    root = etree.fromstring(answer)
    result = root.find(f".//{{{TNS}}}{method}Result")
    return (result.text or "") if result is not None else ""


if __name__ == "__main__":
    sys.exit(main())
