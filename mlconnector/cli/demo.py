"""``mlconnector demo``: the whole flow offline against the simulators."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from mlconnector.cli.context import app_context, console, handle_errors, print_json
from mlconnector.models import ReimbursableMode

log = logging.getLogger("mlconnector.cli")


def _has_command(name: str) -> bool:
    """True when ``mlconnector NAME`` exists (a command or a group)."""
    import typer.main

    from mlconnector.cli.app import app

    return name in getattr(typer.main.get_command(app), "commands", {})


@handle_errors
def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary home and print its path, to inspect it with --home.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    mode: Annotated[
        ReimbursableMode, typer.Option("--mode", case_sensitive=False, help="Post the sample as bills or journal entries.")
    ] = ReimbursableMode.BILL,
) -> None:
    """Run the whole flow offline against built-in Expensify and QuickBooks simulators, and show the result.

    Uses a temporary home (never your configuration) and free loopback ports; everything it starts is
    stopped before it returns. One sample report is blocked on purpose, to show a missing mapping
    and its fix; the demo still exits 0.
    """
    from mlconnector.sandbox.demo import demo_home, run_demo
    from mlconnector.services.logs import setup_logging

    app_ctx = app_context(ctx)
    out = console()
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
        print_json(data)
        return
    from mlconnector.cli.render_demo import demo_view
    from mlconnector.mapping.rules import command

    featured = data["audit_trail"]["report_id"]
    inspect = [command("--home", str(home), *args)
               for args in (("status",), ("audit", "--report", featured)) if _has_command(args[0])]
    out.print(demo_view(data, inspect))
