"""``mlconnector demo``: the whole flow, offline, against the built-in simulators, in a temporary home.

::

    temporary home: config.toml (as init writes it) + state.db
    Expensify simulator (loopback HTTP) ──pull──► reports stored ──plan──► queued or blocked
    serve's WSGI app (loopback thread) ◄──SOAP── Web Connector driver ──qbXML──► QuickBooks simulator
    second pull: reports QuickBooks accepted are stamped as exported in Expensify

Only the two outside systems are simulated; everything between them is the production code path
(``pull_reports`` with the real client over HTTP, ``plan_and_queue``, ``QbwcService`` with
``make_work`` behind the real WSGI app and server). Expensify's rate limits and the export's
"not ready" polls are shortened, not skipped.

Nothing here prints: :func:`run_demo` returns a :class:`DemoResult` that ``cli.py`` renders. Every
server it starts is stopped, and its thread joined, before it returns, whatever happened.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlconnector.config import Config, Secret, load_config, write_config
from mlconnector.errors import MlConnectorError
from mlconnector.expensify.client import ExpensifyClient, RateLimiter
from mlconnector.models import NonReimbursablePolicy, PostingState, ReimbursableMode
from mlconnector.paths import Paths, resolve_paths
from mlconnector.redact import redact_text, register_secret
from mlconnector.sandbox import demo_sample as sample
from mlconnector.sandbox.demo_result import (
    DemoError,
    audit_trail,
    blocked,
    pull_dict,
    reports,
    run_dict,
    transactions,
)
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.sandbox.webconnector import RunSummary, WebConnector
from mlconnector.services.init import InitValues, initialize
from mlconnector.services.pull import pull_reports
from mlconnector.services.queue import plan_and_queue
from mlconnector.store import Store
from mlconnector.store.postings import postings_in

log = logging.getLogger("mlconnector.sandbox.demo")

QBWC_USER = "mlconnector-demo"
# A whole run makes about ten Expensify calls; at the real 5-per-10-s pace the demo would spend most
# of its time waiting, so the limiter keeps its code path with a wider window.
DEMO_RATE_WINDOWS = ((50, 1.0),)
NOT_READY_POLLS = 1  # the first download poll answers "not ready", as Expensify's often does
POLL_DELAY = 0.05
# Lists first, then the writes, then "none": three runs at most; the rest is a safety bound.
MAX_WEB_CONNECTOR_RUNS = 5
FAILED_RUN_ENDINGS = frozenset({"nvu", "busy", "error", "crashed", "connection_error", "noop_limit"})


@dataclass
class DemoResult:
    """Everything ``mlconnector demo`` shows; :meth:`as_dict` is also its ``--json`` output."""

    home: str
    kept: bool
    mode: str
    expensify_url: str
    server_url: str
    reports: list[dict[str, Any]]
    transactions: list[dict[str, Any]]
    blocked: list[dict[str, Any]]
    first_pull: dict[str, Any]
    second_pull: dict[str, Any]
    web_connector_runs: list[dict[str, Any]]
    audit_trail: dict[str, Any]
    quickbooks: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape (keys are only ever added)."""
        return {
            "home": self.home, "kept": self.kept, "mode": self.mode, "expensify_url": self.expensify_url,
            "server_url": self.server_url, "reports": self.reports, "transactions": self.transactions,
            "blocked": self.blocked, "first_pull": self.first_pull, "second_pull": self.second_pull,
            "web_connector_runs": self.web_connector_runs, "audit_trail": self.audit_trail,
            "quickbooks": self.quickbooks, "timings": self.timings,
            "elapsed_seconds": round(self.elapsed_seconds, 2), "next_steps": next_steps(),
        }


def next_steps() -> list[dict[str, str]]:
    """The real commands, in order, that take an installation live."""
    return [
        {"command": "mlconnector init",
         "does": "asks for your Expensify partner credentials and a Web Connector password; writes config.toml"},
        {"command": "mlconnector map refresh", "does": "fetches your policies' categories, tags and employees"},
        {"command": "mlconnector map check",
         "does": "shows how each name maps to QuickBooks; mlconnector map set fixes what blocks"},
        {"command": "mlconnector pull", "does": "exports approved reports and queues them (schedule it daily)"},
        {"command": "mlconnector qwc", "does": "writes the .qwc file to add in the QuickBooks Web Connector"},
        {"command": "mlconnector serve", "does": "runs the endpoint the Web Connector polls"},
    ]


@contextmanager
def demo_home(keep: bool = False) -> Iterator[Path]:
    """A fresh temporary home, removed afterwards unless ``keep``.

    A failed demo keeps it too: its log file is the only account of what went wrong.
    """
    home = Path(tempfile.mkdtemp(prefix="mlconnector-demo-"))
    keep_it = keep
    try:
        yield home
    except DemoError as exc:
        keep_it = True
        exc.hint = f"the log is {home / 'logs' / 'mlconnector.log'}"
        raise
    finally:
        if not keep_it:
            shutil.rmtree(home, ignore_errors=True)


Progress = Callable[[str], None]


def _quiet(step: str) -> None:
    return None


def run_demo(
    home: Path,
    *,
    mode: ReimbursableMode = ReimbursableMode.BILL,
    keep: bool = False,
    today: dt.date | None = None,
    progress: Progress | None = None,
    schema_dir: Path | None = None,
) -> DemoResult:
    """Run the whole flow in ``home`` (an empty folder) and describe what happened.

    ``keep`` is only recorded in the result (the caller owns the folder). ``progress(step)`` is
    told each stage as it starts. ``schema_dir`` (Intuit's qbXML schemas) makes the QuickBooks
    simulator validate every request, as tests do; the demo itself never needs it.

    Raises:
        DemoError: a stage failed, or the sample did not end as it always should (every report
            posted except the one blocked on purpose).
    """
    notify = progress or _quiet
    day = today or dt.datetime.now(dt.timezone.utc).date()
    started = time.perf_counter()
    timings: dict[str, float] = {}
    stage, mark = "starting", started

    def begin(name: str, text: str) -> None:
        nonlocal stage, mark
        now = time.perf_counter()
        if stage != "starting":
            timings[stage] = round(now - mark, 3)
        stage, mark = name, now
        notify(text)

    try:
        with ExitStack() as stack:
            begin("setup", "Starting the Expensify simulator and writing a temporary home")
            expensify = stack.enter_context(ExpensifySimulator(
                sample.expensify_reports(day), policies=sample.policies(),
                partner_user_id="aa_demo_acme_example_com", partner_user_secret=secrets.token_urlsafe(18),
                not_ready_polls=NOT_READY_POLLS, rate_limits=DEMO_RATE_WINDOWS,
            ))
            password = secrets.token_urlsafe(24)  # typed into no Web Connector: never shown, never stored clear
            register_secret(password)
            config = _write_home(home, expensify, password, mode, day)
            store = Store.open(_paths(home).state_file)
            stack.callback(store.close)
            client = stack.enter_context(ExpensifyClient(
                config.expensify.partner_user_id, _secret(config), config.expensify.url,
                limiter=RateLimiter(DEMO_RATE_WINDOWS), poll_delay=POLL_DELAY,
            ))

            begin("pull", "Pulling approved reports from Expensify and planning them")
            first = pull_reports(store, client, config)
            first_plan = plan_and_queue(store, config, today=day, actor="pull")

            begin("post", "Serving the Web Connector endpoint and posting into QuickBooks")
            quickbooks = sample.quickbooks(schema_dir=schema_dir)
            server_url = _start_server(stack, store, config)
            connector = WebConnector(server_url, config.qbwc.username, password,
                                     quickbooks=quickbooks.process_request, hcp_response=quickbooks.hcp_response(),
                                     noop_delay=0)
            stack.callback(connector.http.close)
            runs = _drive(connector, store)

            begin("stamp", "Pulling again: stamping posted reports as exported in Expensify")
            second = pull_reports(store, client, config)
            plan_and_queue(store, config, today=day, actor="pull")

            begin("collect", "Collecting the results")
            _check_outcome(store, runs)
            result = DemoResult(
                home=str(home), kept=keep, mode=mode.value, expensify_url=expensify.url, server_url=server_url,
                reports=reports(store, expensify, config),
                transactions=transactions(store, quickbooks),
                blocked=blocked(store, config, day),
                first_pull={**pull_dict(first), "plan": first_plan.as_dict()},
                second_pull=pull_dict(second),
                web_connector_runs=[run_dict(n, run) for n, run in enumerate(runs, 1)],
                audit_trail=audit_trail(store, sample.FEATURED_REPORT_ID),
                quickbooks={"company": quickbooks.company_name, "bills": len(quickbooks.bills()),
                            "journal_entries": len(quickbooks.journal_entries()),
                            "bill_payments": len(quickbooks.bill_payments()),
                            "requests": len(quickbooks.requests)},
            )
            begin("stop", "Stopping the servers")
        timings[stage] = round(time.perf_counter() - mark, 3)
    except DemoError:
        raise
    except MlConnectorError as exc:
        log.warning("the demo failed during %s: %s", stage, exc)
        raise DemoError(f"the demo failed during {stage}: {redact_text(str(exc))}") from exc
    except Exception as exc:  # a bug: the traceback goes to the log, the user gets one line
        log.exception("the demo failed during %s", stage)
        raise DemoError(f"the demo failed during {stage}: unexpected {type(exc).__name__}: "
                        f"{redact_text(str(exc))}") from exc
    result.timings = timings
    result.elapsed_seconds = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------ the stages


def _paths(home: Path) -> Paths:
    # Not the environment: MLCONNECTOR_CONFIG must not send the demo's config.toml over the user's.
    return resolve_paths(home, environ={})


def _write_home(home: Path, expensify: ExpensifySimulator, password: str, mode: ReimbursableMode,
                today: dt.date) -> Config:
    """config.toml and state.db, written by the same code as ``mlconnector init``."""
    paths = _paths(home)
    initialize(paths, InitValues(
        expensify_user=expensify.partner_user_id, expensify_url=expensify.url,
        expensify_secret=expensify.partner_user_secret, qbwc_user=QBWC_USER, qbwc_password=password,
        mode=mode.value, check_account="Checking" if mode is ReimbursableMode.CHECK else None,
    ))
    # init leaves the first pull's start to the user (or --since); the demo's reports are recent.
    written = load_config(paths.config_file, environ={})
    start = today - dt.timedelta(days=sample.START_DAYS_AGO)
    # Company-card expenses post as credit-card charges, one per expense, as Expensify's own connector does.
    # A report Expensify reimbursed gets its bill paid from Checking (bill_payment_account).
    quickbooks = replace(written.quickbooks, non_reimbursable=NonReimbursablePolicy.CREDIT_CARD,
                         card_account=sample.CARD_ACCOUNT,
                         bill_payment_account="Checking" if mode is ReimbursableMode.BILL else "")
    write_config(paths.config_file, replace(written, expensify=replace(written.expensify, start_date=start),
                                            quickbooks=quickbooks))
    return load_config(paths.config_file, environ={})


def _secret(config: Config) -> Secret:
    secret = config.expensify.partner_user_secret
    if secret is None:
        raise DemoError("the demo's config.toml lost its Expensify secret")
    return secret


def _start_server(stack: ExitStack, store: Store, config: Config) -> str:
    """``mlconnector serve``'s app on a free loopback port, stopped (thread joined) when the stack closes."""
    from mlconnector.soap.server import make_wsgi_app, running_server
    from mlconnector.soap.session import QbwcService
    from mlconnector.soap.work import make_settings, make_work

    settings = make_settings(config)
    service = QbwcService(store, make_work(store, config), settings)
    server = stack.enter_context(running_server(make_wsgi_app(lambda: service)))
    return str(server.soap_url)


def _drive(connector: WebConnector, store: Store) -> list[RunSummary]:
    """Scheduled Web Connector runs until the server says "none", or a run changes nothing."""
    runs: list[RunSummary] = []
    before = store.posting_counts()
    for _ in range(MAX_WEB_CONNECTOR_RUNS):
        run = connector.run()
        runs.append(run)
        if run.stopped in FAILED_RUN_ENDINGS:
            raise DemoError(f"Web Connector run {len(runs)} ended with {run.stopped!r}: "
                            f"{run.last_error or run.close_message or 'no message'}")
        after = store.posting_counts()
        if run.auth_status == "none" or after == before:
            break
        before = after
    return runs


def _check_outcome(store: Store, runs: list[RunSummary]) -> None:
    """The sample always ends the same way; anything else means the machinery broke."""
    for record in postings_in(store, *PostingState):
        expected = PostingState.BLOCKED if record.report_id == sample.BLOCKED_REPORT_ID else PostingState.POSTED
        if record.state is not expected:
            why = record.qb_status_message or record.reason or "no reason recorded"
            raise DemoError(f"report {record.report_id} ended {record.state.value}, not {expected.value}: {why}")
    posted = {r.report_id for r in postings_in(store, PostingState.POSTED)}
    if len(posted) != len(sample.SAMPLE) - 1:
        raise DemoError(f"{len(posted)} of {len(sample.SAMPLE) - 1} sample reports were posted "
                        f"after {len(runs)} Web Connector run(s)")


__all__ = ["DemoError", "DemoResult", "demo_home", "next_steps", "run_demo"]
