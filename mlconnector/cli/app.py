"""The ``mlconnector`` command: composition root, and the only place that prints or exits.

Every command parses its options, calls the layer below and renders the result. Errors from below
are ``MlConnectorError``s; :func:`_handle_errors` prints them as one line (plus the fix) on stderr
and maps them to the exit codes of the user-facing contract. Heavy libraries are imported inside
the commands that need them so that ``mlconnector --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from mlconnector import __version__
from mlconnector.errors import (
    ConfigError,
    ConfigProblem,
    ExpensifyError,
    MlConnectorError,
    RefusedError,
)
from mlconnector.models import PostingMode
from mlconnector.paths import ENV_EXPENSIFY_SECRET, ENV_QBWC_PASSWORD, Paths, resolve_paths

if TYPE_CHECKING:
    from rich.console import Console

    from mlconnector.config import Config
    from mlconnector.expensify.client import ExpensifyClient
    from mlconnector.services.queue import PlanSummary
    from mlconnector.store import Store

log = logging.getLogger("mlconnector.cli")


class ExitCode(IntEnum):
    """Exit codes of the user-facing contract (ARCHITECTURE.md)."""

    OK = 0
    USER = 1
    USAGE = 2
    UPSTREAM = 3
    PARTIAL = 4


app = typer.Typer(
    name="mlconnector",
    help="Post approved Expensify expense reports into QuickBooks Desktop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

P = ParamSpec("P")
R = TypeVar("R")


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def exit_code_for(exc: MlConnectorError) -> ExitCode:
    """The exit code for an error: 3 when an outside system failed, else 1."""
    return ExitCode.UPSTREAM if isinstance(exc, ExpensifyError) else ExitCode.USER


def _print_error(exc: MlConnectorError) -> None:
    err = _console(stderr=True)
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        for problem in exc.problems:
            err.print(f"Error: {problem}", markup=False)
    else:
        err.print(f"Error: {exc}" + (f" — {exc.hint}" if exc.hint else ""), markup=False)


def _handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Render MlConnectorError (and anything unexpected) as one line and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MlConnectorError as exc:
            log.info("%s failed: %s", func.__name__, exc)
            _print_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            _console(stderr=True).print("Interrupted; nothing half-done was kept.", markup=False)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: log the traceback, show the user one line
            log.exception("unexpected error in %s", func.__name__)
            from mlconnector.redact import redact_text

            _console(stderr=True).print(
                f"Error: unexpected {type(exc).__name__}: {' '.join(redact_text(str(exc)).split())}"
                " — details are in the log file",
                markup=False,
            )
            raise typer.Exit(ExitCode.USER) from None

    return wrapper


@dataclass
class AppContext:
    """What the global options resolve to; config and store are opened on first use."""

    paths: Paths
    verbose: int = 0
    _config: Config | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    def config(self) -> Config:
        """The validated configuration (ConfigError when missing or invalid)."""
        if self._config is None:
            from mlconnector.config import load_config

            self._config = load_config(self.paths.config_file)
            from mlconnector.redact import register_secret

            secret = self._config.expensify.partner_user_secret
            register_secret(secret.reveal() if secret else None)
        return self._config

    def store(self) -> Store:
        """The state file, opened and migrated."""
        if self._store is None:
            from mlconnector.store import Store

            self._store = Store.open(self.paths.state_file)
        return self._store

    def close(self) -> None:
        """Close the state file if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlconnector {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="Folder holding config.toml, state.db and logs/ [env: MLCONNECTOR_HOME].")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Path of config.toml [env: MLCONNECTOR_CONFIG].")
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="Log to the console too (-vv: debug).")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Post approved Expensify expense reports into QuickBooks Desktop."""
    from mlconnector.services.logs import setup_logging

    paths = resolve_paths(home, config)
    # demo logs into its own temporary home: it must not create or write anything of the user's.
    setup_logging(None if ctx.invoked_subcommand == "demo" else paths.log_dir, verbose=verbose)
    context = AppContext(paths=paths, verbose=verbose)
    ctx.obj = context
    ctx.call_on_close(context.close)


def _ctx(ctx: typer.Context) -> AppContext:
    obj = ctx.obj
    assert isinstance(obj, AppContext)
    return obj


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------------------- init


@app.command()
@_handle_errors
def init(
    ctx: typer.Context,
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help="Take every value from options and environment; never prompt.")
    ] = False,
    expensify_user: Annotated[str | None, typer.Option("--expensify-user", help="Expensify partnerUserID.")] = None,
    expensify_url: Annotated[
        str | None, typer.Option("--expensify-url", help="Integration Server URL (default: Expensify's).")
    ] = None,
    qbwc_user: Annotated[
        str | None, typer.Option("--qbwc-user", help="User name the Web Connector logs in with.")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="Post reports as 'bill' (default) or 'journal'.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.toml.")] = False,
) -> None:
    """Write config.toml and create the state file.

    Secrets come from prompts, or from MLCONNECTOR_EXPENSIFY_SECRET and MLCONNECTOR_QBWC_PASSWORD with
    --non-interactive. The Web Connector password is stored only as a salted scrypt hash.
    """
    from mlconnector.services.init import InitValues, initialize

    app_ctx = _ctx(ctx)
    paths = app_ctx.paths
    if paths.config_file.exists() and not force:
        raise RefusedError(
            f"{paths.config_file} already exists", hint="pass --force to overwrite it (existing values are kept)"
        )
    env = os.environ
    values = InitValues(
        expensify_user=expensify_user,
        expensify_url=expensify_url,
        expensify_secret=env.get(ENV_EXPENSIFY_SECRET) or None,
        qbwc_user=qbwc_user,
        qbwc_password=env.get(ENV_QBWC_PASSWORD) or None,
        mode=mode,
    )
    if not non_interactive:
        values = _prompt_init_values(values)
    result = initialize(paths, values)
    out = _console()
    # POSIX gets mode 0600; on Windows the file inherits its folder's permissions, so say so plainly.
    privacy = "readable by you only" if os.name == "posix" else "it may hold a secret: keep its folder private"
    out.print(f"Wrote {result.config_file} ({privacy})", markup=False)
    out.print(f"State file {result.state_file} (schema {result.schema_version})", markup=False)
    if not result.has_expensify_credentials:
        out.print(
            f"Expensify credentials are not set yet: edit {result.config_file} or set {ENV_EXPENSIFY_SECRET}.",
            markup=False,
        )
    out.print("Next: mlconnector status", markup=False)


def _prompt_init_values(values: Any) -> Any:
    """Ask for whatever the options and environment did not give."""
    expensify_user = values.expensify_user or typer.prompt("Expensify partnerUserID", default="", show_default=False)
    secret = values.expensify_secret or typer.prompt(
        "Expensify partnerUserSecret (hidden; Enter to skip)", default="", hide_input=True, show_default=False
    )
    qbwc_user = values.qbwc_user or typer.prompt("Web Connector user name", default="mlconnector")
    password = values.qbwc_password or typer.prompt(
        "Web Connector password (hidden)", hide_input=True, confirmation_prompt=True
    )
    mode = values.mode or typer.prompt("Post reports as bill or journal", default="bill")
    return replace(
        values,
        expensify_user=expensify_user or None,
        expensify_secret=secret or None,
        qbwc_user=qbwc_user,
        qbwc_password=password,
        mode=mode,
    )


# ------------------------------------------------------------------------------------- status


@app.command()
@_handle_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the configuration, the state file and how many postings are in each state."""
    from mlconnector.services.status import collect_status

    app_ctx = _ctx(ctx)
    report = collect_status(app_ctx.paths)
    if as_json:
        _print_json(report)
        return
    from mlconnector.cli.render import status_view

    _console().print(status_view(report))


# -------------------------------------------------------------------------------------- audit

audit_app = typer.Typer(
    help="Show the audit trail: every event in order, for all reports or one (audit verify checks it).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(audit_app, name="audit")


def _existing_store(app_ctx: AppContext) -> Store:
    """The state file, which reading commands must not create."""
    from mlconnector.errors import NotFoundError

    if not app_ctx.paths.state_file.exists():
        raise NotFoundError(f"no state file at {app_ctx.paths.state_file}", hint="run mlconnector init first")
    return app_ctx.store()


@audit_app.callback()
@_handle_errors
def audit(
    ctx: typer.Context,
    report: Annotated[str | None, typer.Option("--report", metavar="ID", help="Only this report's timeline.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="From this day (YYYY-MM-DD) or ISO date-time, UTC.")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", metavar="E", help="Only this event, e.g. failed, blocked, posted.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="table|json|csv", help="Output format.")] = "table",
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", help="The newest N rows; 0 for all (table default: 200, or all for --report)."),
    ] = None,
) -> None:
    """Show the audit trail, oldest first: pulls, plans, sends, QuickBooks answers, replays, mapping changes.

    Times are UTC. An unknown --event or --format exits 1 and lists the valid values.
    """
    if ctx.invoked_subcommand is not None:
        return
    from mlconnector.services import audit as audit_trail

    store = _existing_store(_ctx(ctx))
    chosen = audit_trail.parse_format(fmt)
    listing = audit_trail.list_audit(
        store, report_id=report, since=audit_trail.parse_since(since) if since else None,
        event=audit_trail.parse_event(event, store.audit.events()) if event else None,
        limit=audit_trail.effective_limit(chosen, limit, report),
    )
    from mlconnector.services.audit_format import rows_to_csv, rows_to_json, summarize

    if chosen == "json":
        typer.echo(rows_to_json(listing.rows))
    elif chosen == "csv":
        typer.echo(rows_to_csv(listing.rows), nl=False)
    else:
        from mlconnector.cli.render import audit_table

        data = [{**r.as_dict(), "summary": summarize(r)} for r in listing.rows]
        _console().print(audit_table(data, matching=listing.matching, limit=listing.limit))


@audit_app.command("verify")
@_handle_errors
def audit_verify(ctx: typer.Context) -> None:
    """Check the audit log's hash chain; exit 1 and name the first row that does not match."""
    from mlconnector.services.audit import check_chain

    check = check_chain(_existing_store(_ctx(ctx)))
    if not check.intact:
        _console(stderr=True).print(f"Error: {check.describe()}", markup=False)
        raise typer.Exit(ExitCode.USER)
    _console().print(check.describe(), markup=False)


# ------------------------------------------------------------------------------------- replay


@app.command()
@_handle_errors
def replay(
    ctx: typer.Context,
    report_id: Annotated[str, typer.Argument(metavar="REPORT_ID", help="The Expensify report ID.")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Also for a posted report: QuickBooks is checked by RefNumber, posted only if absent."),
    ] = False,
) -> None:
    """Queue a failed or blocked report again, planned with the current mappings.

    A posted report is refused unless --force; then the next Web Connector session first looks it up
    in QuickBooks and posts it only if it is not there. Exits 4 when the report is still blocked.
    """
    import datetime as dt

    from mlconnector.services.replay import ReplayOutcome, replay_report

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    result = replay_report(_existing_store(app_ctx), config, report_id, force=force, today=dt.date.today(),
                           actor=_actor())
    out = _console()
    rid = result.report_id
    if result.outcome is ReplayOutcome.QUEUED:
        how = "planned again with the current mappings" if result.replanned else "same plan as before"
        out.print(f"Report {rid}: queued {result.queued} posting(s) for the next Web Connector session ({how}).",
                  markup=False)
    elif result.outcome is ReplayOutcome.ALREADY_QUEUED:
        out.print(f"Report {rid} is already queued with this plan; the next Web Connector session posts it.",
                  markup=False)
    elif result.outcome is ReplayOutcome.RECHECK:
        for ref, txn in result.rechecked:
            out.print(f"Report {rid}: the next Web Connector session asks QuickBooks for RefNumber {ref}"
                      f" (was TxnID {txn}) and posts it only if QuickBooks no longer has it.", markup=False)
        if result.queued:
            out.print(f"Report {rid}: {result.queued} failed part(s) queued again as planned.", markup=False)
    elif result.outcome is ReplayOutcome.NOTHING_TO_POST:
        out.print(f"Report {rid} has nothing to post: {'; '.join(result.reasons) or 'no expenses to post'}",
                  markup=False)
    else:
        out.print(f"Report {rid} is still blocked:", markup=False)
        for reason in result.reasons:
            out.print(f"  {reason}", markup=False)
        raise typer.Exit(ExitCode.PARTIAL)


# ---------------------------------------------------------------------------------------- map

map_app = typer.Typer(help="Map Expensify categories, tags and employees to QuickBooks names.", no_args_is_help=True)
app.add_typer(map_app, name="map")

KIND_HELP = "category (→ account), class (tag → class), customer (tag → customer:job) or employee (email → vendor)."


def _actor() -> str:
    """Who is at the terminal, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (some services and containers)
        return "cli"


def _replan_after_mapping_change(app_ctx: AppContext, config: Config) -> None:
    import datetime as dt

    from mlconnector.services.queue import replan_unsent

    summary = replan_unsent(app_ctx.store(), config, today=dt.date.today(), actor=_actor())
    if summary.queued or summary.blocked:
        _console().print(
            f"Re-planned: {len(summary.queued)} report(s) queued, {len(summary.blocked_reports)} still blocked"
            " (mlconnector map check shows why).",
            markup=False,
        )


@map_app.command("set")
@_handle_errors
def map_set(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    source: Annotated[str, typer.Argument(help="The Expensify name: category, tag or submitter email.")],
    target: Annotated[str, typer.Argument(help="The QuickBooks full name, e.g. 'Travel:Airfare'.")],
) -> None:
    """Map an Expensify name to a QuickBooks name (audited); blocked reports are planned again."""
    from mlconnector.services.mappings import set_mapping

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    change = set_mapping(app_ctx.store(), kind, source, target, actor=_actor())
    was = f' (was "{change.old}")' if change.old is not None and change.changed else ""
    same = " (unchanged)" if not change.changed else ""
    _console().print(f'Mapped {change.kind} "{change.source}" → "{change.new}"{was}{same}', markup=False)
    if change.changed:
        _replan_after_mapping_change(app_ctx, config)


@map_app.command("unset")
@_handle_errors
def map_unset(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help=KIND_HELP)],
    source: Annotated[str, typer.Argument(help="The Expensify name whose mapping to remove.")],
) -> None:
    """Remove a mapping (audited); the name falls back to same-name or email matching."""
    from mlconnector.services.mappings import unset_mapping

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    change = unset_mapping(app_ctx.store(), kind, source, actor=_actor())
    _console().print(f'Removed {change.kind} "{change.source}" (was "{change.old}")', markup=False)
    _replan_after_mapping_change(app_ctx, config)


@map_app.command("list")
@_handle_errors
def map_list(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: " + KIND_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the mappings as JSON.")] = False,
) -> None:
    """List the mappings."""
    from mlconnector.services.mappings import list_mappings, parse_kind

    rows = list_mappings(_existing_store(_ctx(ctx)), parse_kind(kind) if kind else None)
    data = [{"kind": r.kind.value, "source": r.source, "target": r.target, "updated_at": r.updated_at} for r in rows]
    if as_json:
        _print_json(data)
        return
    from mlconnector.cli.render import mappings_table

    _console().print(mappings_table(data))


@map_app.command("import")
@_handle_errors
def map_import(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A .csv (kind,source,target) or .toml ([kind] tables) file.")],
) -> None:
    """Add or change mappings from a file, all or none (mappings not in the file stay)."""
    from mlconnector.mapping.files import read_file
    from mlconnector.services.mappings import import_mappings

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    rows = read_file(file)
    changes = import_mappings(app_ctx.store(), rows, actor=_actor())
    added = sum(1 for c in changes if c.old is None)
    changed = sum(1 for c in changes if c.old is not None and c.changed)
    _console().print(
        f"Imported {len(changes)} mapping(s) from {file.name}: {added} added, {changed} changed,"
        f" {len(changes) - added - changed} unchanged",
        markup=False,
    )
    if added or changed:
        _replan_after_mapping_change(app_ctx, config)


@map_app.command("export")
@_handle_errors
def map_export(
    ctx: typer.Context,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv or toml (default: from --output's extension, else csv).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Write every mapping as CSV or TOML; map import reads it back unchanged."""
    from mlconnector.mapping.files import FORMATS, dumps, format_for
    from mlconnector.services.mappings import list_mappings

    from mlconnector.errors import UserError

    chosen = (fmt or (format_for(output) if output else "csv")).lower()
    if chosen not in FORMATS:
        raise UserError(f"unknown format {chosen!r}", hint="use --format csv or --format toml")
    rows = list_mappings(_existing_store(_ctx(ctx)))
    text = dumps([(r.kind.value, r.source, r.target) for r in rows], chosen)
    if output is None:
        typer.echo(text, nl=False)
        return
    # A byte-order mark makes Excel open a CSV as UTF-8 (names like "Café" stay intact).
    output.write_text(text, encoding="utf-8-sig" if chosen == "csv" else "utf-8", newline="")
    _console(stderr=True).print(f"Wrote {len(rows)} mapping(s) to {output}", markup=False)


@map_app.command("check")
@_handle_errors
def map_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the check as JSON.")] = False,
) -> None:
    """Show how every name in pulled, unposted reports maps; exit 4 when one blocks a report."""
    from mlconnector.services.queue import check_mappings

    app_ctx = _ctx(ctx)
    check = check_mappings(_existing_store(app_ctx), app_ctx.config())
    if as_json:
        _print_json(check.as_dict())
    else:
        from mlconnector.cli.render import mapping_check_view

        _console().print(mapping_check_view(check.as_dict()))
    if check.blocking:
        raise typer.Exit(ExitCode.PARTIAL)
# -------------------------------------------------------------------------------------- serve


@app.command()
@_handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: qbwc.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to listen on (default: qbwc.port, 8080).")] = None,
    certfile: Annotated[
        Path | None, typer.Option("--certfile", help="TLS certificate (PEM); serve HTTPS. Needs --keyfile.")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM) for --certfile.")] = None,
) -> None:
    """Serve the QuickBooks Web Connector endpoint at /qbwc until Ctrl-C.

    The WSDL is at /qbwc?wsdl and the support page at /support. Register it with the file from
    mlconnector qwc.
    """
    from mlconnector.soap.server import make_wsgi_app
    from mlconnector.soap.server import serve as run_server
    from mlconnector.soap.session import QbwcService
    from mlconnector.soap.work import make_settings, make_work

    if bool(certfile) != bool(keyfile):
        raise ConfigError([ConfigProblem("--certfile/--keyfile", "give both or neither", "pass both files for HTTPS")])
    for option, file in (("--certfile", certfile), ("--keyfile", keyfile)):
        if file is not None and not file.is_file():
            raise ConfigError([ConfigProblem(option, f"{file} is not a file", "pass the PEM file's path")])
    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    settings = make_settings(config)
    store = app_ctx.store()
    service = QbwcService(store, make_work(store, config), settings)
    wsgi_app = make_wsgi_app(lambda: service)
    out = _console()
    bound_host = host or config.qbwc.host

    def ready(url: str) -> None:
        out.print(f"Serving the Web Connector at {url} (WSDL: {url}?wsdl). Ctrl-C stops.", markup=False)
        if not certfile and bound_host not in ("127.0.0.1", "localhost", "::1"):
            out.print("Note: plain HTTP on a non-loopback address; the Web Connector needs HTTPS there.",
                      markup=False)

    bound_port = config.qbwc.port if port is None else port  # 0: any free port, as the tests use
    try:
        run_server(wsgi_app, bound_host, bound_port,
                   certfile=str(certfile) if certfile else None, keyfile=str(keyfile) if keyfile else None,
                   on_ready=ready)
    except OSError as exc:
        raise RefusedError(f"cannot listen on {bound_host}:{bound_port}: {exc.strerror or exc}",
                           hint="choose another --port or stop the program using it") from None
    out.print("Stopped.", markup=False)


# ---------------------------------------------------------------------------------------- qwc


@app.command()
@_handle_errors
def qwc(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The AppURL the Web Connector calls (default: qbwc.public_url, else localhost)."),
    ] = None,
    output: Annotated[Path, typer.Option("--output", help="Where to write the .qwc file.")] = Path("mlconnector.services.qwc"),
) -> None:
    """Write the .qwc file that adds ml-connector to the QuickBooks Web Connector.

    OwnerID and FileID are created once and kept in the state file, so the file can be written again
    without the Web Connector treating it as a new application.
    """
    from mlconnector.services.qwc import write_qwc

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    target = url or config.qbwc.public_url or f"http://localhost:{config.qbwc.port}/qbwc"
    urls = write_qwc(app_ctx.store(), output, target, username=config.qbwc.username,
                     run_every_minutes=config.qbwc.run_every_minutes)
    out = _console()
    out.print(f"Wrote {output} for {urls.app_url} (support page {urls.support_url}).", markup=False)
    out.print("Next: open it with the QuickBooks Web Connector (Add an application), then enter the password.",
              markup=False)


# --------------------------------------------------------------------------------------- pull


def _expensify_client(config: Config) -> ExpensifyClient:
    from mlconnector.expensify.client import ExpensifyClient

    user, secret = config.require_expensify_credentials()
    return ExpensifyClient(user, secret, config.expensify.url)


class _PullProgress:
    """Rich bars per stage on a terminal; nothing at all otherwise (Task Scheduler logs stay clean)."""

    LABELS = {"stamp": "Stamping posted reports", "export": "Exporting", "download": "Downloading",
              "parse": "Parsing", "store": "Storing"}

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     console=console, transient=True)

    def __enter__(self) -> _PullProgress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, stage: str, completed: int, total: int | None) -> None:
        if self.progress is None:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(self.LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=completed, total=total)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@app.command()
@_handle_errors
def pull(
    ctx: typer.Context,
    since: Annotated[
        datetime | None,
        typer.Option("--since", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Export reports from this day."),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option("--until", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD", help="Export reports up to this day."),
    ] = None,
    report: Annotated[
        list[str] | None, typer.Option("--report", metavar="ID", help="Pull only this report ID (repeat for several).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Export, parse and validate, but store and stamp nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Export approved and closed reports from Expensify, store them, and queue them for QuickBooks.

    First stamps reports QuickBooks has accepted as exported in Expensify (unless
    expensify.mark_exported is false). Ends by planning every stored report not planned yet: it is
    queued for the Web Connector, or blocked with the reason. Exits 4 when some reports were invalid,
    or while any report in the state file is blocked or failed, from this pull or an earlier one
    (mlconnector status lists them). A dry run shows that count too but exits 4 only for invalid
    reports: it previews the export and plans nothing.
    """
    from mlconnector.services.locking import exclusive
    from mlconnector.services.pull import pull_reports, waiting_for_a_person

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    client = _expensify_client(config)
    out = _console()
    with exclusive(app_ctx.paths.lock_file), client, _PullProgress(out, out.is_terminal and not as_json) as bars:
        summary = pull_reports(
            app_ctx.store(), client, config, since=_day(since), until=_day(until), report_ids=tuple(report or ()),
            dry_run=dry_run, progress=bars,
        )
        # Planning happens under the same lock, so two runs never plan the same report twice.
        plan = None if dry_run else _plan_pulled(app_ctx, config)
        waiting = waiting_for_a_person(app_ctx.store())
    data = summary.as_dict()
    if plan is not None:
        data["plan"] = plan.as_dict()
    data["waiting"] = waiting
    if as_json:
        _print_json(data)
    else:
        from mlconnector.cli.render_pull import pull_summary_view

        out.print(pull_summary_view(data))
    # A scheduled run must not report success while reports wait for a person, whichever pull blocked them.
    if summary.invalid or (not dry_run and (waiting["postings"] or (plan is not None and plan.blocked))):
        raise typer.Exit(ExitCode.PARTIAL)


def _plan_pulled(app_ctx: AppContext, config: Config) -> PlanSummary:
    """Plan and queue every stored report that has no posting yet (not only this pull's)."""
    import datetime as dt

    from mlconnector.services.queue import plan_and_queue

    return plan_and_queue(app_ctx.store(), config, today=dt.date.today(), actor="pull")


@map_app.command("refresh")
@_handle_errors
def map_refresh(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Fetch each policy's categories, tags and employees from Expensify into the state file."""
    from mlconnector.services.lists import refresh_policy_lists

    app_ctx = _ctx(ctx)
    config = app_ctx.config()
    with _expensify_client(config) as client:
        summary = refresh_policy_lists(app_ctx.store(), client, config)
    if as_json:
        _print_json(summary.as_dict())
        return
    from mlconnector.cli.render_pull import lists_view

    _console().print(lists_view(summary.as_dict()))


# --------------------------------------------------------------------------------------- demo


def _has_command(name: str) -> bool:
    """True when ``mlconnector NAME`` exists (a command or a group)."""
    import typer.main

    return name in getattr(typer.main.get_command(app), "commands", {})


@app.command()
@_handle_errors
def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary home and print its path, to inspect it with --home.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    mode: Annotated[
        PostingMode, typer.Option("--mode", case_sensitive=False, help="Post the sample as bills or journal entries.")
    ] = PostingMode.BILL,
) -> None:
    """Run the whole flow offline against built-in Expensify and QuickBooks simulators, and show the result.

    Uses a temporary home (never your configuration) and free loopback ports; everything it starts is
    stopped before it returns. One sample report is blocked on purpose, to show a missing mapping
    and its fix; the demo still exits 0.
    """
    from mlconnector.sandbox.demo import demo_home, run_demo
    from mlconnector.services.logs import setup_logging

    app_ctx = _ctx(ctx)
    out = _console()
    spinner = out.is_terminal and not as_json
    with demo_home(keep) as home:
        # The demo's log belongs to the demo's home: kept with it, removed with it.
        setup_logging(home / "logs", verbose=app_ctx.verbose)
        try:
            if spinner:
                with out.status("Starting the demo") as status:
                    result = run_demo(home, mode=mode, keep=keep, progress=lambda step: status.update(step))
            else:
                result = run_demo(home, mode=mode, keep=keep)
        finally:
            setup_logging(None, verbose=app_ctx.verbose)  # closes the file, so the folder can go
    data = result.as_dict()
    if as_json:
        _print_json(data)
        return
    from mlconnector.mapping.rules import command
    from mlconnector.cli.render_demo import demo_view

    featured = data["audit_trail"]["report_id"]
    inspect = [command("--home", str(home), *args)
               for args in (("status",), ("audit", "--report", featured)) if _has_command(args[0])]
    out.print(demo_view(data, inspect))


def main() -> None:
    """Console-script entry point."""
    # A Windows console or a redirected stream (Task Scheduler) may be cp1252: a name it cannot encode
    # must print as "?", not abort the command after its work is done.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")
    try:
        app()
    except KeyboardInterrupt:  # pressed outside a command body (e.g. at a prompt)
        sys.exit(130)


__all__ = ["app", "main", "ExitCode", "ConfigProblem"]
