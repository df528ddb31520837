"""``mlconnector notify test``: check the alert channels of ``[notify]`` by sending a test message."""

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
    print_json,
)

log = logging.getLogger("mlconnector.cli")

notify_app = typer.Typer(
    help="Alerts by e-mail or a Slack/Teams webhook when something needs a person ([notify] in config.toml).",
    no_args_is_help=True,
)


@notify_app.command("test")
@handle_errors
def notify_test(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print each channel's outcome as JSON.")] = False,
) -> None:
    """Send a test alert through every configured channel now, and say per channel how it went.

    Exits 1 when a channel failed (with the fix), or when no channel is configured (naming the keys to set).
    """
    import datetime as dt

    from mlconnector.services.alerts import company_label
    from mlconnector.services.notify import send_test

    app_ctx = app_context(ctx)
    config = app_ctx.config()
    company = (company_label(existing_store(app_ctx), config) if app_ctx.paths.state_file.exists()
               else str(app_ctx.paths.home))
    outcomes = send_test(config, company=company, now=dt.datetime.now(dt.timezone.utc))
    failed = sum(not o.sent for o in outcomes)
    code = ExitCode.USER if failed else ExitCode.OK
    if as_json:
        print_json({"channels": [o.as_dict() for o in outcomes], "failed": failed, "exit_code": int(code)})
    else:
        from mlconnector.cli.check import marks

        out = console()
        ok, bad, _ = marks(out.encoding)
        for o in outcomes:
            out.print(f"{ok} {o.channel}: {o.detail}" if o.sent else f"{bad} {o.channel}: {o.detail} — {o.fix}",
                      markup=False)
    if failed:
        log.info("notify test: %d of %d channel(s) failed", failed, len(outcomes))
        raise typer.Exit(code)
