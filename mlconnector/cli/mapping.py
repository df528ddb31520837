"""``mlconnector map …``: set, unset, list, import, export, check and refresh mappings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import RenderableType

    from mlconnector.config import Config
    from mlconnector.services.queue import PlanSummary

from mlconnector.cli.context import (
    AppContext,
    ExitCode,
    actor,
    app_context,
    console,
    existing_store,
    expensify_client,
    handle_errors,
    print_json,
)

log = logging.getLogger("mlconnector.cli")

map_app = typer.Typer(help="Map Expensify categories, tags and employees to QuickBooks names.", no_args_is_help=True)

KIND_HELP = "category (→ account), class (tag → class), customer (tag → customer:job) or employee (email → vendor)."


def _replan_after_mapping_change(app_ctx: AppContext, config: Config, *, quiet: bool = False) -> PlanSummary:
    import datetime as dt

    from mlconnector.services.queue import replan_unsent

    summary = replan_unsent(app_ctx.store(), config, today=dt.date.today(), actor=actor())
    if not quiet:
        _print_replanned(summary)
    return summary


def _print_replanned(summary: PlanSummary) -> None:
    if summary.queued or summary.blocked:
        console().print(
            f"Re-planned: {len(summary.queued)} report(s) queued, {len(summary.blocked_reports)} still blocked"
            " (mlconnector map check shows why).",
            markup=False,
        )


@map_app.command("set")
@handle_errors
def map_set(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="KIND", help=KIND_HELP)],
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="The Expensify name: category, tag or submitter email.")
    ],
    target: Annotated[str, typer.Argument(metavar="TARGET", help="The QuickBooks full name, e.g. 'Travel:Airfare'.")],
) -> None:
    """Map an Expensify name to a QuickBooks name (audited); blocked reports are planned again."""
    from mlconnector.services.mappings import set_mapping

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    change = set_mapping(app_ctx.store(), kind, source, target, actor=actor())
    was = f' (was "{change.old}")' if change.old is not None and change.changed else ""
    same = " (unchanged)" if not change.changed else ""
    console().print(f'Mapped {change.kind} "{change.source}" → "{change.new}"{was}{same}', markup=False)
    if change.changed:
        _replan_after_mapping_change(app_ctx, config)


@map_app.command("unset")
@handle_errors
def map_unset(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="KIND", help=KIND_HELP)],
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="The Expensify name whose mapping to remove.")],
) -> None:
    """Remove a mapping (audited); the name falls back to same-name or email matching."""
    from mlconnector.services.mappings import unset_mapping

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    change = unset_mapping(app_ctx.store(), kind, source, actor=actor())
    console().print(f'Removed {change.kind} "{change.source}" (was "{change.old}")', markup=False)
    _replan_after_mapping_change(app_ctx, config)


@map_app.command("list")
@handle_errors
def map_list(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", metavar="KIND", help="Only this kind: " + KIND_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the mappings as JSON.")] = False,
) -> None:
    """List the mappings."""
    from mlconnector.services.mappings import list_mappings, parse_kind

    rows = list_mappings(existing_store(app_context(ctx)), parse_kind(kind) if kind else None)
    data = [{"kind": r.kind.value, "source": r.source, "target": r.target, "updated_at": r.updated_at} for r in rows]
    if as_json:
        print_json(data)
        return
    from mlconnector.cli.render import mappings_table

    console().print(mappings_table(data))


@map_app.command("import")
@handle_errors
def map_import(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A .csv (kind,source,target) or .toml ([kind] tables) file.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"imported": n, "errors": [{"line", "problem", "fix"}]}.')
    ] = False,
) -> None:
    """Add or change mappings from a file, all or none (mappings not in the file stay).

    Every problem of the file is listed, one line each with its line number; nothing is imported
    until there is none. Commas, semicolons or tabs between the columns all work.
    """
    from mlconnector.errors import UserError
    from mlconnector.mapping.files import MappingFileError, read
    from mlconnector.services.mappings import import_file

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    try:
        changes = import_file(app_ctx.store(), read(file), actor=actor())
    except MappingFileError as exc:
        _import_failed(file, [p.as_dict() for p in exc.problems], exc.lines(), as_json)
    except UserError as exc:
        if not as_json:
            raise
        _import_failed(file, [{"line": None, "problem": str(exc), "fix": exc.hint or ""}], [], as_json)
    added = sum(1 for c in changes if c.old is None)
    changed = sum(1 for c in changes if c.old is not None and c.changed)
    replanned = _replan_after_mapping_change(app_ctx, config, quiet=True) if added or changed else None
    if as_json:
        print_json({"imported": len(changes), "added": added, "changed": changed,
                    "unchanged": len(changes) - added - changed, "errors": [],
                    "replanned": replanned.as_dict() if replanned else None})
        return
    console().print(
        f"Imported {len(changes)} mapping(s) from {file.name}: {added} added, {changed} changed,"
        f" {len(changes) - added - changed} unchanged",
        markup=False,
    )
    if replanned is not None:
        _print_replanned(replanned)


def _import_failed(file: Path, errors: list[dict[str, object]], lines: list[str], as_json: bool) -> NoReturn:
    if as_json:
        print_json({"imported": 0, "errors": errors})
    else:
        err = console(stderr=True)
        for line in lines:
            err.print(f"Error: {line}", markup=False)
        err.print(f"Nothing was imported from {file.name} ({len(lines)} problem(s)); fix them and run"
                  " the import again.", markup=False)
    raise typer.Exit(ExitCode.USER)


@map_app.command("export")
@handle_errors
def map_export(
    ctx: typer.Context,
    fmt: Annotated[
        str | None,
        typer.Option("--format", metavar="csv|toml", help="csv or toml (default: from --output's extension, else csv)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Write every mapping as CSV or TOML; map import reads it back unchanged."""
    from mlconnector.errors import UserError
    from mlconnector.mapping.files import FORMATS, dumps, format_for
    from mlconnector.services.mappings import list_mappings

    chosen = (fmt or (format_for(output) if output else "csv")).lower()
    if chosen not in FORMATS:
        raise UserError(f"unknown format {chosen!r}", hint="use --format csv or --format toml")
    rows = list_mappings(existing_store(app_context(ctx)))
    text = dumps([(r.kind.value, r.source, r.target) for r in rows], chosen)
    if output is None:
        typer.echo(text, nl=False)
        return
    # A byte-order mark makes Excel open a CSV as UTF-8 (names like "Café" stay intact).
    output.write_text(text, encoding="utf-8-sig" if chosen == "csv" else "utf-8", newline="")
    console(stderr=True).print(f"Wrote {len(rows)} mapping(s) to {output}", markup=False)


@map_app.command("check")
@handle_errors
def map_check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the check as JSON.")] = False,
) -> None:
    """Show how every name in pulled, unposted reports maps; exit 4 when one blocks a report.

    Then the categories, tags and employees of Expensify's lists (mlconnector map refresh) that no
    report uses yet and that still need a mapping, each with the command that maps it.
    """
    from mlconnector.services.queue import check_mappings

    app_ctx = app_context(ctx)
    check = check_mappings(existing_store(app_ctx), app_ctx.config())
    if as_json:
        print_json(check.as_dict())
    else:
        from rich.console import Group

        from mlconnector.cli.render import mapping_check_view

        data = check.as_dict()
        console().print(Group(mapping_check_view(data), _not_used_yet_view(data)))
    if check.blocking:
        raise typer.Exit(ExitCode.PARTIAL)


@map_app.command("refresh")
@handle_errors
def map_refresh(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Fetch each policy's categories, tags and employees from Expensify into the state file."""
    from mlconnector.services.lists import refresh_policy_lists

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    with expensify_client(config) as client:
        summary = refresh_policy_lists(app_ctx.store(), client, config)
    if as_json:
        print_json(summary.as_dict())
        return
    from mlconnector.cli.render_pull import lists_view

    console().print(lists_view(summary.as_dict()))


def _not_used_yet_view(check: dict[str, Any]) -> RenderableType:
    """The names of Expensify's lists that no report uses yet and that still need a mapping."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    names = check["not_used_yet"]
    if check["expensify_lists_at"] is None:
        return Text("Expensify's categories, tags and employees have not been fetched: run mlconnector map refresh"
                    " to list the names that still need a mapping before reports use them.", style="yellow")
    when = f"fetched {check['expensify_lists_at'][:16].replace('T', ' ')} UTC by mlconnector map refresh"
    if not names:
        return Text(f"Every name in Expensify's lists ({when}) maps to QuickBooks.", style="green")
    title = Text(f"Not used by any report yet: {len(names)} name(s) in Expensify's lists ({when})"
                 " with no mapping and no QuickBooks match. Map them before reports arrive:", style="yellow")
    # Every cell folds rather than cuts: a name, an e-mail or a fix is never shortened with an ellipsis.
    table = Table(title_justify="left")
    for column in ("Kind", "Expensify", "Why", "Fix"):
        table.add_column(column, overflow="fold")
    for n in names:
        table.add_row(n["kind"], Text(n["source"]), Text(n["problem"]), Text(n["fix"]))
    return Group(title, table)
