"""``mlconnector replay``: a failed or blocked report goes again."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mlconnector.cli.context import (
    ExitCode,
    actor,
    app_context,
    console,
    existing_store,
    handle_errors,
)

log = logging.getLogger("mlconnector.cli")


@handle_errors
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

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    result = replay_report(existing_store(app_ctx, write=True), config, report_id, force=force, today=dt.date.today(),
                           actor=actor())
    out = console()
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
