"""The ``mlconnector`` command: composition root, and the only place that prints or exits.

Every command parses its options, calls the layer below and renders the result. Errors from below
are ``MlConnectorError``s; ``cli.context.handle_errors`` prints them as one line (plus the fix) on stderr
and maps them to the exit codes of the user-facing contract. Heavy libraries are imported inside
the commands that need them so that ``mlconnector --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlconnector import __version__
from mlconnector.cli.audit import audit_app
from mlconnector.cli.check import check
from mlconnector.cli.context import AppContext, ExitCode
from mlconnector.cli.demo import demo
from mlconnector.cli.init import init
from mlconnector.cli.mapping import map_app
from mlconnector.cli.notify import notify_app
from mlconnector.cli.pull import pull
from mlconnector.cli.replay import replay
from mlconnector.cli.serve import qwc, serve
from mlconnector.cli.status import status
from mlconnector.errors import ConfigProblem
from mlconnector.paths import resolve_paths

app = typer.Typer(
    name="mlconnector",
    help="Post approved Expensify expense reports into QuickBooks Desktop.\n\n"
         "New here? `mlconnector demo` shows the whole flow offline in about a second; then `mlconnector init`.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlconnector {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", metavar="DIR", help="Folder holding config.toml, state.db and logs/ [env: MLCONNECTOR_HOME].")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="Path of config.toml [env: MLCONNECTOR_CONFIG].")
    ] = None,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="Log to the console too (-vv: debug).")] = 0,
    utc: Annotated[bool, typer.Option("--utc", help="Show times in UTC instead of local time.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Post approved Expensify expense reports into QuickBooks Desktop."""
    from mlconnector.cli.times import use_utc
    from mlconnector.services.logs import setup_logging

    use_utc(utc)
    paths = resolve_paths(home, config)
    # demo logs into its own temporary home: it must not create or write anything of the user's. Nor does
    # any command but init create a home that is not there (a mistyped --home must not become a new one).
    creates_home = ctx.invoked_subcommand == "init" or paths.home.is_dir()
    log_dir = paths.log_dir if creates_home and ctx.invoked_subcommand != "demo" else None
    setup_logging(log_dir, verbose=verbose)
    context = AppContext(paths=paths, verbose=verbose)
    ctx.obj = context
    ctx.call_on_close(context.close)


# The order people meet the commands in (it is the order of `mlconnector --help`): try it, set it up, map,
# pull, connect the Web Connector, then the everyday ones.
app.command()(demo)
app.command()(init)
app.command()(check)
app.add_typer(map_app, name="map")
app.command()(pull)
app.command()(qwc)
app.command()(serve)
app.command()(status)
app.add_typer(audit_app, name="audit")
app.command()(replay)
app.add_typer(notify_app, name="notify")


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


__all__ = ["app", "main", "AppContext", "ExitCode", "ConfigProblem"]
