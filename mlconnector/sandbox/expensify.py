"""An Expensify Integration Server simulator speaking the real wire format over loopback HTTP.

It follows the checklist of EXPENSIFY.md §9: form fields from body and query string, "No Template
Submitted" when the template is missing or nested, a bare ``export<uuid>.<ext>`` answer, downloads
that are not ready for the first N polls, ``{"responseMessage":"File not found"}`` for unknown names,
``markAsExported`` applied when the export job runs (unless ``test`` is ``"true"``) and honoured by the
``markedAsExported`` filter, error envelopes at HTTP 200, 429 as status and as body code, a Tomcat
HTML page for malformed JSON, server-side rate limits (5/10 s and 20/60 s) on an injectable clock,
the policy and policy-list getters, and hooks to make the next requests fail.

Exports are rendered by a Python emulation of ml-connector's own templates
(:mod:`mlconnector.sandbox.export_render`); any other template is refused with a 410.

    with ExpensifySimulator(demo_reports(20)) as sim:
        client = ExpensifyClient(sim.partner_user_id, sim.partner_user_secret, sim.url)
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mlconnector.sandbox.expensify_data import demo_policies, demo_report, demo_reports
from mlconnector.sandbox.expensify_wire import (
    RATE_LIMIT_MESSAGE,
    TOMCAT_500,
    env,
    failure,
    job_type_of,
)
from mlconnector.sandbox.export_render import render_export, render_stamp

__all__ = ["ExpensifySimulator", "RecordedRequest", "SimReport", "demo_policies", "demo_report", "demo_reports"]

EXPORT_MARKER = "mlconnector-export v1"
STAMP_MARKER = "mlconnector-stamp v1"
FAILURES = (
    "auth", "http_401", "http_403", "validation", "rate_limit_http", "rate_limit_body", "server_error_body",
    "http_500", "http_503", "html", "drop",
)


@dataclass
class SimReport:
    """One report as the simulator holds it: the template data model plus server-side state."""

    data: dict[str, Any]
    state: str = "APPROVED"
    labels: set[str] = field(default_factory=set)

    @property
    def report_id(self) -> str:
        return str(self.data.get("reportID", ""))


@dataclass(frozen=True)
class RecordedRequest:
    """What the simulator saw: when (on its clock), which job, and how it answered."""

    at: float
    job_type: str
    status: int
    rate_limited: bool
    form: dict[str, str]


@dataclass
class _Export:
    content: bytes
    polls_left: int


class ExpensifySimulator:
    """The simulator. Start it with ``with`` (or ``start()``/``stop()``); ``url`` is its endpoint.

    Args:
        reports: template data models (dicts) or ``SimReport``s; dicts start APPROVED.
        policies: ``{policy_id: {"name":…, "categories": […], "tags": […], "employees": […]}}``.
        not_ready_polls: how many download polls answer "not ready" before the file comes.
        not_ready_style: ``"empty"`` (an empty 200 body) or ``"envelope"`` ("File not found").
        clock: the clock used for rate limits and request times (tests share a fake one).
        rate_limits: ``(limit, seconds)`` windows; empty to turn limiting off.
    """

    def __init__(
        self,
        reports: Iterable[Mapping[str, Any] | SimReport] = (),
        *,
        policies: Mapping[str, Mapping[str, Any]] | None = None,
        partner_user_id: str = "aa_demo_example_com",
        partner_user_secret: str = "demo-secret-0000",
        not_ready_polls: int = 1,
        not_ready_style: str = "empty",
        clock: Callable[[], float] = time.monotonic,
        rate_limits: tuple[tuple[int, float], ...] = ((5, 10.0), (20, 60.0)),
    ) -> None:
        self._lock = threading.RLock()
        self.partner_user_id = partner_user_id
        self.partner_user_secret = partner_user_secret
        self.reports: dict[str, SimReport] = {}
        for item in reports:
            self.add_report(item)
        self.policies = dict(policies) if policies is not None else demo_policies()
        self.not_ready_polls = not_ready_polls
        self.not_ready_style = not_ready_style
        self.clock = clock
        self.rate_limits = rate_limits
        self.requests: list[RecordedRequest] = []
        self.exports: dict[str, _Export] = {}
        self._failures: list[tuple[str, str | None]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The endpoint to post jobs to."""
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/Integration-Server/ExpensifyIntegrations"

    def start(self) -> ExpensifySimulator:
        """Listen on 127.0.0.1 on a free port, in a background thread."""
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="expensify-sim", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the server thread; nothing is left running."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ExpensifySimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------- test controls

    def add_report(self, item: Mapping[str, Any] | SimReport) -> SimReport:
        """Add (or replace) a report."""
        report = item if isinstance(item, SimReport) else SimReport(dict(item))
        with self._lock:
            self.reports[report.report_id] = report
        return report

    def edit_report(self, report_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change a report's data in place (an edit made in Expensify)."""
        with self._lock:
            change(self.reports[report_id].data)

    def reimburse(self, report_id: str, on: dt.date | None = None, *, ach: bool = True) -> None:
        """Pay the employee, as Expensify's Reimburse button does: the report moves to Reimbursed (state
        REIMBURSED) with the date (``None``: Expensify gives none) and whether by ACH. Its export label stays."""
        with self._lock:
            report = self.reports[report_id]
            report.state = "REIMBURSED"
            report.data["status"] = "Reimbursed"
            report.data["isACHReimbursed"] = ach
            if on is not None:
                report.data["reimbursed"] = f"{on.isoformat()} 10:15:00"
            else:
                report.data.pop("reimbursed", None)

    def fail_next(self, kind: str, times: int = 1, message: str | None = None) -> None:
        """Make the next ``times`` requests fail as ``kind`` (one of ``FAILURES``)."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}; use one of {', '.join(FAILURES)}")
        with self._lock:
            self._failures.extend([(kind, message)] * times)

    def request_times(self, *, served_only: bool = False) -> list[float]:
        """When each request arrived, on the simulator's clock."""
        with self._lock:
            return [r.at for r in self.requests if not (served_only and r.rate_limited)]

    def labels(self, report_id: str) -> set[str]:
        """The export labels Expensify holds for a report."""
        with self._lock:
            return set(self.reports[report_id].labels)

    # ------------------------------------------------------------------------- request logic

    def handle(self, form: dict[str, str]) -> tuple[int, str, bytes]:
        """Answer one request: ``(HTTP status, content type, body)``."""
        with self._lock:
            now = self.clock()
            limited = self._over_limit(now)
            job_type = job_type_of(form.get("requestJobDescription", ""))
            if limited:
                answer = (429, "application/json", env(RATE_LIMIT_MESSAGE, 429))
            elif self._failures:
                answer = failure(*self._failures.pop(0))
            else:
                answer = self._dispatch(form)
            self.requests.append(RecordedRequest(now, job_type, answer[0], limited, dict(form)))
            return answer

    def _over_limit(self, now: float) -> bool:
        served = [r.at for r in self.requests if not r.rate_limited]
        return any(sum(1 for t in served if t > now - period) >= limit for limit, period in self.rate_limits)

    def _dispatch(self, form: dict[str, str]) -> tuple[int, str, bytes]:
        raw = form.get("requestJobDescription")
        if raw is None:
            return 500, "text/html;charset=utf-8", TOMCAT_500.format(what="requestJobDescription").encode()
        try:
            job = json.loads(raw)
            if not isinstance(job, dict):
                raise ValueError
        except ValueError:
            return 500, "text/html;charset=utf-8", TOMCAT_500.format(what="JSONObject").encode()
        creds = job.get("credentials") or {}
        given = (creds.get("partnerUserID"), creds.get("partnerUserSecret"))
        if given != (self.partner_user_id, self.partner_user_secret):
            message = "Authentication error: wrong partnerUserID or partnerUserSecret"
            return 200, "text/plain;charset=utf-8", env(message, 401)
        kind = job.get("type")
        if kind == "file":
            return self._export(job, form.get("template"))
        if kind == "download":
            return self._download(job)
        if kind == "get":
            return self._get(job)
        return 200, "text/plain;charset=utf-8", env("Argument 'type' is missing or malformed", 410)

    def _export(self, job: dict[str, Any], template: str | None) -> tuple[int, str, bytes]:
        if not template:
            return 200, "text/plain;charset=utf-8", env("No Template Submitted", 410)
        settings = job.get("inputSettings") or {}
        filters = settings.get("filters") or {}
        problem = _check_filters(filters)
        if problem:
            return 200, "text/plain;charset=utf-8", env(problem, 410)
        render: Callable[[Iterable[Mapping[str, Any]]], Iterator[str]]
        if EXPORT_MARKER in template:
            # The report fields the template asks for (customField["KEY"]), as FreeMarker would print them.
            asked = re.findall(r'customField\["([A-Za-z0-9_]+)"\]', template)
            render = functools.partial(render_export, report_fields=asked)
        elif STAMP_MARKER in template:
            render = render_stamp
        else:
            return 200, "text/plain;charset=utf-8", env("the simulator renders only ml-connector's templates", 410)
        states = {s.strip().upper() for s in str(settings.get("reportState", "")).split(",") if s.strip()}
        chosen = [r for r in self.reports.values() if _matches(r, filters, states)]
        output = job.get("outputSettings") or {}
        name = f"{output.get('fileBasename', 'export')}{uuid.uuid4()}.{output.get('fileExtension', 'csv')}"
        self.exports[name] = _Export("".join(render(r.data for r in chosen)).encode("utf-8"), self.not_ready_polls)
        if str(job.get("test", "false")).lower() != "true":
            for action in job.get("onFinish") or []:
                if isinstance(action, dict) and action.get("actionName") == "markAsExported":
                    for report in chosen:
                        report.labels.add(str(action.get("label", "")))
        return 200, "text/plain;charset=utf-8", name.encode()

    def _download(self, job: dict[str, Any]) -> tuple[int, str, bytes]:
        export = self.exports.get(str(job.get("fileName", "")))
        if export is None:
            return 200, "text/plain;charset=utf-8", json.dumps({"responseMessage": "File not found"}).encode()
        if export.polls_left > 0:
            export.polls_left -= 1
            if self.not_ready_style == "envelope":
                return 200, "text/plain;charset=utf-8", json.dumps({"responseMessage": "File not found"}).encode()
            return 200, "text/plain;charset=utf-8", b""
        return 200, "application/octet-stream", export.content

    def _get(self, job: dict[str, Any]) -> tuple[int, str, bytes]:
        settings = job.get("inputSettings") or {}
        if settings.get("type") == "policyList":
            policies = [
                {"outputCurrency": p.get("outputCurrency", "USD"), "owner": p.get("owner", "admin@example.com"),
                 "role": "admin", "name": p.get("name", pid), "id": pid, "type": "corporate"}
                for pid, p in self.policies.items()
            ]
            return 200, "text/plain;charset=utf-8", json.dumps({"policyList": policies, "responseCode": 200}).encode()
        if settings.get("type") != "policy":
            return 200, "text/plain;charset=utf-8", env("Argument 'type' is missing or malformed", 410)
        ids, fields = settings.get("policyIDList"), settings.get("fields")
        if not isinstance(ids, list) or not ids:
            return 200, "text/plain;charset=utf-8", env("Required parameter 'policyIDList' is missing", 410)
        if not isinstance(fields, list) or not fields:
            return 200, "text/plain;charset=utf-8", env("Required parameter 'fields' is missing", 410)
        info = {pid: {f: self.policies[pid].get(f, []) for f in fields} for pid in ids if pid in self.policies}
        return 200, "application/json", json.dumps({"responseCode": 200, "policyInfo": info}).encode()


def _parse_day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _check_filters(filters: Mapping[str, Any]) -> str | None:
    if not ({"reportIDList", "startDate", "approvedAfter"} & set(filters)):
        return "Bad request. Verify the request parameters."
    for key in ("startDate", "endDate", "approvedAfter"):
        if key in filters and (not isinstance(filters[key], str) or _parse_day(filters[key]) is None
                               or len(filters[key]) != 10):
            return f"Malformed date '{filters[key]}'. Expected format is yyyy-MM-dd"
    start, end = _parse_day(filters.get("startDate")), _parse_day(filters.get("endDate"))
    if start and end and (end - start).days > 366:
        return "The date range must not be longer than one year"
    return None


def _day_of(value: Any) -> dt.date | None:
    return _parse_day(str(value)[:10]) if value else None


def _matches(report: SimReport, filters: Mapping[str, Any], states: set[str]) -> bool:
    data = report.data
    if states and report.state not in states:
        return False
    if "reportIDList" in filters:
        wanted = {i.strip() for i in str(filters["reportIDList"]).split(",")}
        if report.report_id not in wanted:
            return False
    if "policyIDList" in filters:
        if str(data.get("policyID", "")) not in {i.strip() for i in str(filters["policyIDList"]).split(",")}:
            return False
    label = filters.get("markedAsExported")
    if label and label in report.labels:
        return False
    # "submitted or created ..., whichever occurred last"
    days = [d for d in (_day_of(data.get("created")), _day_of(data.get("submitted"))) if d]
    last = max(days) if days else None
    start, end = _parse_day(filters.get("startDate")), _parse_day(filters.get("endDate"))
    if start and (last is None or last < start):
        return False
    if end and (last is None or last > end):
        return False
    after = _parse_day(filters.get("approvedAfter"))
    approved = _day_of(data.get("approved"))
    return not (after and (approved is None or approved <= after))


class _Handler(BaseHTTPRequestHandler):
    sim: ExpensifySimulator
    server_version = "ExpensifySimulator/1"

    def _form(self) -> dict[str, str]:
        form = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode("utf-8")
            form.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
        return form

    def _answer(self) -> None:
        status, content_type, body = self.sim.handle(self._form())
        if status == 0:  # "drop": hang up without an answer
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        for start in range(0, len(body), 1 << 20):
            self.wfile.write(view[start:start + (1 << 20)])

    do_POST = _answer
    do_GET = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests and demo read sim.requests instead
