"""What every command shares: exit codes, the one-line error handling, the context, console and JSON."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from mlconnector.errors import ConfigError, ExpensifyError, MlConnectorError
from mlconnector.paths import Paths

if TYPE_CHECKING:
    from datetime import date as dt_date

    from rich.console import Console

    from mlconnector.config import Config
    from mlconnector.expensify.client import ExpensifyClient
    from mlconnector.store import Store

log = logging.getLogger("mlconnector.cli")


class ExitCode(IntEnum):
    """Exit codes of the user-facing contract (ARCHITECTURE.md)."""

    OK = 0
    USER = 1
    USAGE = 2
    UPSTREAM = 3
    PARTIAL = 4


P = ParamSpec("P")
R = TypeVar("R")


# Output that is not a terminal (a pipe, a file, Task Scheduler's log) is as wide as its content: a table
# never cuts or wraps a report ID, an e-mail or a fix, so `mlconnector audit | grep ID` finds it whole.
PIPE_WIDTH = 100_000


def console(stderr: bool = False) -> Console:
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    interactive = bool(getattr(stream, "isatty", lambda: False)())
    return Console(stderr=stderr, soft_wrap=True, highlight=False, width=None if interactive else PIPE_WIDTH)


def exit_code_for(exc: MlConnectorError) -> ExitCode:
    """The exit code for an error: 3 when an outside system failed, else 1."""
    return ExitCode.UPSTREAM if isinstance(exc, ExpensifyError) else ExitCode.USER


def print_error(exc: MlConnectorError) -> None:
    err = console(stderr=True)
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        for problem in exc.problems:
            err.print(f"Error: {problem}", markup=False)
    else:
        err.print(f"Error: {exc}" + (f" — {exc.hint}" if exc.hint else ""), markup=False)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Render MlConnectorError (and anything unexpected) as one line and exit with its code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MlConnectorError as exc:
            log.info("%s failed: %s", func.__name__, exc)
            print_error(exc)
            raise typer.Exit(exit_code_for(exc)) from None
        except KeyboardInterrupt:
            console(stderr=True).print("Interrupted; nothing half-done was kept.", markup=False)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: log the traceback, show the user one line
            log.exception("unexpected error in %s", func.__name__)
            from mlconnector.redact import redact_text

            console(stderr=True).print(
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


def existing_store(app_ctx: AppContext, *, write: bool = False) -> Store:
    """The state file, which these commands must not create.

    Reading commands (``write=False``) also work in a folder this user cannot write (opened read-only).
    """
    import os

    from mlconnector.errors import NotFoundError

    path = app_ctx.paths.state_file
    if not path.exists():
        raise NotFoundError(f"no state file at {path}", hint="run mlconnector init first")
    if not write and app_ctx._store is None and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        from mlconnector.store import Store

        app_ctx._store = Store.open_read_only(path)
    return app_ctx.store()


def expensify_client(config: Config) -> ExpensifyClient:
    from mlconnector.expensify.client import ExpensifyClient

    user, secret = config.require_expensify_credentials()

    def say_retry(text: str) -> None:  # on stderr: a waiting pull says why, and --json stays clean
        console(stderr=True).print(text, markup=False)

    return ExpensifyClient(user, secret, config.expensify.url, on_retry=say_retry)


def actor() -> str:
    """Who is at the terminal, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name (some services and containers)
        return "cli"


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.obj
    assert isinstance(obj, AppContext)
    return obj


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))




def home_args(ctx: typer.Context) -> str:
    """`` --home DIR`` / `` --config FILE`` as given to this command, for the commands it suggests next."""
    import os
    import shlex
    import subprocess

    # cmd.exe and PowerShell take double quotes (and pass single ones through literally).
    quote = (lambda v: subprocess.list2cmdline([v])) if os.name == "nt" else shlex.quote
    params = ctx.find_root().params
    parts = [f" --{name} {quote(str(params[name]))}" for name in ("home", "config") if params.get(name)]
    return "".join(parts)


DAY_HINT = "write the day as YYYY-MM-DD, e.g. 2026-01-31"


def valid_day(value: str | None) -> str | None:
    """Option callback: a day as YYYY-MM-DD, else a usage error (exit 2) saying the format."""
    import datetime as dt

    if value is None:
        return None
    try:
        dt.date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day: {DAY_HINT}") from None
    return value.strip()


def valid_moment(value: str | None) -> str | None:
    """Option callback: a day, or an ISO date-time (e.g. 2026-03-01T09:30), else a usage error (exit 2)."""
    import datetime as dt

    if value is None:
        return None
    try:
        dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day: {DAY_HINT}, or a time like 2026-03-01T09:30") from None
    return value.strip()


def day(value: str | None) -> dt_date | None:
    """The day of an option :func:`valid_day` accepted."""
    import datetime as dt

    return dt.date.fromisoformat(value) if value else None
