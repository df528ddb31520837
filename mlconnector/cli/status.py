"""``mlconnector status``: the dashboard."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mlconnector.cli.context import app_context, console, handle_errors, print_json

log = logging.getLogger("mlconnector.cli")


@handle_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the configuration, the state file and how many postings are in each state."""
    from mlconnector.services.status import collect_status

    app_ctx = app_context(ctx)
    report = collect_status(app_ctx.paths)
    if as_json:
        print_json(report)
        return
    from mlconnector.cli.render import status_view

    console().print(status_view(report))
