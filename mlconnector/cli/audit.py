"""``mlconnector audit`` and ``audit verify``."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mlconnector.cli.context import (
    ExitCode,
    app_context,
    console,
    existing_store,
    handle_errors,
    valid_moment,
)

log = logging.getLogger("mlconnector.cli")

audit_app = typer.Typer(
    help="Show the audit trail: every event in order, for all reports or one (audit verify checks it).",
    invoke_without_command=True,
    no_args_is_help=False,
)


@audit_app.callback()
@handle_errors
def audit(
    ctx: typer.Context,
    report: Annotated[str | None, typer.Option("--report", metavar="ID", help="Only this report's timeline.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="YYYY-MM-DD", callback=valid_moment,
                                 help="From this day, or an ISO date-time (UTC unless it names a zone).")
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", metavar="E", help="Only this event, e.g. failed, blocked, posted.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="FORMAT", help="table, json or csv.")] = "table",
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", help="The newest N rows; 0 for all (table default: 200, or all for --report)."),
    ] = None,
) -> None:
    """Show the audit trail, oldest first: pulls, plans, sends, QuickBooks answers, replays, mapping changes.

    Times are local with their zone (--utc: UTC); JSON and CSV keep ISO 8601 UTC. --since is UTC unless it
    names a zone. An unknown --event or --format exits 1 and lists the valid values.
    """
    if ctx.invoked_subcommand is not None:
        return
    from mlconnector.services import audit as audit_trail

    store = existing_store(app_context(ctx))
    chosen = "json" if as_json else audit_trail.parse_format(fmt)
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
        console().print(audit_table(data, matching=listing.matching, limit=listing.limit))


@audit_app.command("verify")
@handle_errors
def audit_verify(ctx: typer.Context) -> None:
    """Check the audit log's hash chain; exit 1 and name the first row that does not match."""
    from mlconnector.services.audit import check_chain

    check = check_chain(existing_store(app_context(ctx)))
    if not check.intact:
        console(stderr=True).print(f"Error: {check.describe()}", markup=False)
        raise typer.Exit(ExitCode.USER)
    console().print(check.describe(), markup=False)
