"""``mlconnector init``: write config.toml and create the state file."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from mlconnector.cli.context import app_context, console, day, handle_errors, home_args, valid_day
from mlconnector.errors import RefusedError
from mlconnector.paths import ENV_EXPENSIFY_SECRET, ENV_QBWC_PASSWORD

if TYPE_CHECKING:
    from mlconnector.services.init import InitValues

log = logging.getLogger("mlconnector.cli")

INTRO = """\
Setting up ml-connector. You will need:
  - your Expensify partnerUserID and partnerUserSecret (https://www.expensify.com/tools/integrations/);
  - a password for the QuickBooks Web Connector (8 characters or more; you type it again there);
  - how reports should post: as bills (the usual), checks, or journal entries;
  - the day the first pull should start from.
Nothing is written until the last answer; a mistyped answer is asked again.
"""


@handle_errors
def init(
    ctx: typer.Context,
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help="Take every value from options and environment; never prompt.")
    ] = False,
    expensify_user: Annotated[str | None, typer.Option("--expensify-user", metavar="ID",
                                                       help="Expensify partnerUserID.")] = None,
    expensify_url: Annotated[
        str | None, typer.Option("--expensify-url", metavar="URL", help="Integration Server URL (default: Expensify's).")
    ] = None,
    qbwc_user: Annotated[
        str | None, typer.Option("--qbwc-user", metavar="USER", help="User name the Web Connector logs in with.")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", metavar="MODE", help="Post reports as 'bill' (default), 'check' or 'journal'.")
    ] = None,
    check_account: Annotated[
        str | None, typer.Option("--check-account", metavar="ACCOUNT",
                                 help="With --mode check: the bank account checks are written from.")
    ] = None,
    start_date: Annotated[
        str | None,
        typer.Option("--start-date", callback=valid_day, metavar="YYYY-MM-DD",
                     help="The first pull exports reports from this day (default: the first day of last month)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.toml.")] = False,
) -> None:
    """Write config.toml and create the state file.

    Secrets come from prompts, or with --non-interactive from MLCONNECTOR_EXPENSIFY_SECRET (which then
    stays in the environment and is not copied into config.toml) and MLCONNECTOR_QBWC_PASSWORD. The
    Web Connector password is stored only as a salted scrypt hash.
    """
    from mlconnector.services.init import MIN_PASSWORD, InitValues, initialize

    app_ctx = app_context(ctx)
    paths = app_ctx.paths
    if paths.config_file.exists() and not force:
        raise RefusedError(
            f"{paths.config_file} already exists", hint="pass --force to overwrite it (existing values are kept)"
        )
    env = os.environ
    out = console()
    values = InitValues(
        expensify_user=expensify_user,
        expensify_url=expensify_url,
        # The README advises keeping the secret in the environment: init never copies it to disk (a secret is
        # written to config.toml only when typed at the prompt).
        expensify_secret=None,
        qbwc_user=qbwc_user,
        qbwc_password=env.get(ENV_QBWC_PASSWORD) or None,
        mode=mode,
        check_account=check_account,
        start_date=day(start_date),
    )
    if not non_interactive:
        out.print(INTRO, markup=False)
        if env.get(ENV_EXPENSIFY_SECRET):
            out.print(f"Using {ENV_EXPENSIFY_SECRET} from the environment for the Expensify secret (it is not "
                      "written to config.toml).", markup=False)
        values = _prompt_init_values(values, dt.date.today(), ask_secret=not env.get(ENV_EXPENSIFY_SECRET))
    result = initialize(paths, values)
    # POSIX gets mode 0600; on Windows the file inherits its folder's permissions, so say so plainly.
    privacy = "readable by you only" if os.name == "posix" else "it may hold a secret: keep its folder private"
    out.print(f"Wrote {result.config_file} ({privacy})", markup=False)
    out.print(f"State file {result.state_file} (schema {result.schema_version})", markup=False)
    if result.start_date:
        out.print(f"The first pull exports reports from {result.start_date.isoformat()} "
                  "(expensify.start_date; init --force --start-date YYYY-MM-DD changes it).", markup=False)
    if values.qbwc_password and len(values.qbwc_password) < MIN_PASSWORD:
        out.print(f"Warning: the Web Connector password is shorter than {MIN_PASSWORD} characters; it guards your "
                  "QuickBooks company file.", markup=False)
    if not result.has_expensify_credentials and not env.get(ENV_EXPENSIFY_SECRET):
        out.print(
            f"Expensify credentials are not set yet: set {ENV_EXPENSIFY_SECRET} (or edit {result.config_file}).",
            markup=False,
        )
    out.print(f"Next: mlconnector{home_args(ctx)} check", markup=False)


def _ask(prompt: str, check: Callable[[str], str | None], **options: object) -> str:
    """Ask until ``check`` accepts the answer (it returns the problem, or None)."""
    while True:
        answer = str(typer.prompt(prompt, **options))  # type: ignore[arg-type]
        problem = check(answer)
        if problem is None:
            return answer
        console(stderr=True).print(f"  {problem}; try again.", markup=False)


def _prompt_init_values(values: InitValues, today: dt.date, *, ask_secret: bool = True) -> InitValues:
    """Ask for whatever the options and environment did not give; every answer is checked as it is typed."""
    from mlconnector.services.init import MIN_PASSWORD, default_start_date

    def password_ok(text: str) -> str | None:
        return None if len(text) >= MIN_PASSWORD else f"use {MIN_PASSWORD} characters or more"

    def mode_ok(text: str) -> str | None:
        return None if text.strip().lower() in ("bill", "check", "journal") else "answer bill, check or journal"

    def date_ok(text: str) -> str | None:
        try:
            dt.date.fromisoformat(text.strip())
        except ValueError:
            return "write the day as YYYY-MM-DD, e.g. 2026-01-01"
        return None

    expensify_user = values.expensify_user or typer.prompt("Expensify partnerUserID", default="", show_default=False)
    secret = values.expensify_secret or (typer.prompt(
        "Expensify partnerUserSecret (hidden; Enter to skip)", default="", hide_input=True, show_default=False
    ) if ask_secret else "")
    qbwc_user = values.qbwc_user or typer.prompt("Web Connector user name", default="mlconnector")
    password = values.qbwc_password or _ask("Web Connector password (hidden)", password_ok, hide_input=True,
                                            confirmation_prompt=True)
    mode = values.mode or _ask("Post reports as bill, check or journal", mode_ok, default="bill")
    check_account = values.check_account
    if mode.strip().lower() == "check" and not check_account:
        check_account = typer.prompt("Bank account checks are written from (its full name in QuickBooks)")
    start = values.start_date or dt.date.fromisoformat(_ask(
        "First pull starts from (YYYY-MM-DD)", date_ok, default=default_start_date(today).isoformat()).strip())
    return replace(
        values,
        expensify_user=expensify_user or None,
        expensify_secret=secret or None,
        qbwc_user=qbwc_user,
        qbwc_password=password,
        mode=mode.strip().lower(),
        check_account=check_account,
        start_date=start,
    )
