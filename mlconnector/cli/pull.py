"""``mlconnector pull``: export, download, store, plan and stamp."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from mlconnector.config import Config
    from mlconnector.expensify.client import ExpensifyClient
    from mlconnector.services.queue import PlanSummary

from mlconnector.cli.context import (
    AppContext,
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
    from mlconnector.services.locking import exclusive
    from mlconnector.services.pull import pull_reports, waiting_for_a_person

    app_ctx = app_context(ctx)
    out = console()
    try:
        config = app_ctx.config()
        client = expensify_client(config)
        with exclusive(app_ctx.paths.lock_file), client, _PullProgress(out, out.is_terminal and not as_json) as bars:
            summary = pull_reports(
                app_ctx.store(), client, config, since=day(since), until=day(until), report_ids=tuple(report or ()),
                dry_run=dry_run, progress=bars,
            )
            lists = None if dry_run else _refresh_lists(app_ctx, client, config)
            # Planning happens under the same lock, so two runs never plan the same report twice.
            plan = None if dry_run else _plan_pulled(app_ctx, config)
            payments = [] if dry_run else _queue_payments(app_ctx, config)
            waiting = waiting_for_a_person(app_ctx.store())
    except MlConnectorError as exc:
        if as_json:  # a script reading --json gets JSON whatever happened; the one-line error goes to stderr
            print_json({"result": "failed", "error": str(exc), "hint": exc.hint, "exit_code": int(exit_code_for(exc))})
        if not dry_run:
            _alert(app_ctx)  # Expensify failing on consecutive runs is itself something to tell a person
        raise
    if not dry_run:
        _alert(app_ctx)
    data = summary.as_dict()
    if plan is not None:
        data["plan"] = plan.as_dict()
        data["payments_queued"] = payments
        data["expensify_lists"] = lists
    if dry_run:
        from mlconnector.services.preview import preview_plans

        wanted = {*summary.new, *summary.changed}
        data["preview"] = preview_plans(app_ctx.store(), config, [r for r in summary.previewed if r.report_id in wanted],
                                        today=dt.date.today())
    data["waiting"] = waiting
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


def _alert(app_ctx: AppContext) -> None:
    """Tell a person what newly needs them ([notify]); never fails the pull."""
    import datetime as dt

    from mlconnector.errors import MlConnectorError

    try:
        config, store = app_ctx.config(), app_ctx.store()
    except MlConnectorError:
        return  # no config or state file: nothing to tell, and the pull's own error says why
    from mlconnector.services.notify import send_alerts

    send_alerts(store, config, now=dt.datetime.now(dt.timezone.utc), trigger="pull")


def _refresh_lists(app_ctx: AppContext, client: ExpensifyClient, config: Config) -> dict[str, Any]:
    """Expensify's categories, tags and employees fetched again when a day old (what `map check` compares);
    a failure here is reported and leaves the pull's own result alone."""
    from mlconnector.errors import ExpensifyError
    from mlconnector.services.lists import refresh_if_stale

    try:
        refreshed = refresh_if_stale(app_ctx.store(), client, config)
    except ExpensifyError as exc:
        log.warning("the Expensify lists could not be refreshed: %s", exc)
        return {"refreshed": False, "error": str(exc)}
    return {"refreshed": refreshed is not None, "error": None}


def _queue_payments(app_ctx: AppContext, config: Config) -> list[str]:
    """Queue the bill payment of every reimbursed report whose bills QuickBooks holds (bill_payment_account)."""
    from mlconnector.services.payments import queue_payments

    return queue_payments(app_ctx.store(), config, today=dt.date.today(), actor="pull")


def _plan_pulled(app_ctx: AppContext, config: Config) -> PlanSummary:
    """Plan and queue every stored report that has no posting yet (not only this pull's)."""
    from mlconnector.services.queue import plan_and_queue

    return plan_and_queue(app_ctx.store(), config, today=dt.date.today(), actor="pull")
