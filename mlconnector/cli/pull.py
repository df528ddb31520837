"""``mlconnector pull``: export, download, store, plan and stamp."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

from mlconnector.cli.context import (
    ExitCode,
    app_context,
    console,
    day,
    exit_code_for,
    expensify_client,
    handle_errors,
    print_json,
    valid_day,
)
from mlconnector.errors import MlConnectorError

log = logging.getLogger("mlconnector.cli")


class _PullProgress:
    """Rich bars per stage on a terminal; nothing at all otherwise (Task Scheduler logs stay clean)."""

    LABELS = {"stamp": "Stamping posted reports", "export": "Export jobs done", "download": "Downloading",
              "parse": "Parsing", "store": "Storing"}

    def __init__(self, console: Console, enabled: bool) -> None:
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
            )

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
        if stage == "wait":  # Expensify is preparing job N's file: say so on the jobs bar, which is not done yet
            stage, completed = "export", completed - 1
            label = f"Waiting for Expensify's file (job {completed + 1} of {total})"
            if stage in self.tasks:
                self.progress.update(self.tasks[stage], description=label)
                return
            self.tasks[stage] = self.progress.add_task(label, total=total, completed=completed)
            return
        if stage == "export" and stage in self.tasks:
            self.progress.update(self.tasks[stage], description=self.LABELS["export"])
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(self.LABELS.get(stage, stage), total=total)
        self.progress.update(self.tasks[stage], completed=completed, total=total)


@handle_errors
def pull(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", callback=valid_day, metavar="YYYY-MM-DD", help="Export reports from this day."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", callback=valid_day, metavar="YYYY-MM-DD", help="Export reports up to this day."),
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
    from mlconnector.services.pull_job import run_pull_job

    app_ctx = app_context(ctx)
    out = console()
    try:
        config = app_ctx.config()
        client = expensify_client(config)
        with client, _PullProgress(out, out.is_terminal and not as_json) as bars:
            job = run_pull_job(app_ctx.store(), client, config, app_ctx.paths.lock_file, today=dt.date.today(),
                               since=day(since), until=day(until), report_ids=tuple(report or ()), dry_run=dry_run,
                               progress=bars)
    except MlConnectorError as exc:
        if as_json:  # a script reading --json gets JSON whatever happened; the one-line error goes to stderr
            print_json({"result": "failed", "error": str(exc), "hint": exc.hint, "exit_code": int(exit_code_for(exc))})
        raise
    summary, plan, waiting = job.summary, job.plan, job.waiting
    data = job.as_dict()
    if dry_run:
        from mlconnector.services.preview import preview_plans

        wanted = {*summary.new, *summary.changed}
        data["preview"] = preview_plans(app_ctx.store(), config, [r for r in summary.previewed if r.report_id in wanted],
                                        today=dt.date.today())
    if as_json:
        print_json(data)
    else:
        from mlconnector.cli.render_pull import pull_summary_view

        out.print(pull_summary_view(data))
    if summary.not_found:
        found_any = len(summary.not_found) < len(set(report or ()))
        console(stderr=True).print(
            f"Error: not found in Expensify: {', '.join(summary.not_found)} — check the ID; only reports in "
            f"expensify.report_states ({', '.join(config.expensify.report_states)}) are exported", markup=False)
        raise typer.Exit(ExitCode.PARTIAL if found_any else ExitCode.USER)
    # A scheduled run must not report success while reports wait for a person, whichever pull blocked them.
    if summary.invalid or (not dry_run and (waiting["postings"] or (plan is not None and plan.blocked))):
        raise typer.Exit(ExitCode.PARTIAL)
