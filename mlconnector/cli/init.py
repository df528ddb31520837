"""``mlconnector init``: write config.toml and create the state file."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Annotated, Any

import typer

from mlconnector.cli.context import app_context, console, handle_errors
from mlconnector.errors import RefusedError
from mlconnector.paths import ENV_EXPENSIFY_SECRET, ENV_QBWC_PASSWORD

log = logging.getLogger("mlconnector.cli")


@handle_errors
def init(
    ctx: typer.Context,
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", help="Take every value from options and environment; never prompt.")
    ] = False,
    expensify_user: Annotated[str | None, typer.Option("--expensify-user", help="Expensify partnerUserID.")] = None,
    expensify_url: Annotated[
        str | None, typer.Option("--expensify-url", help="Integration Server URL (default: Expensify's).")
    ] = None,
    qbwc_user: Annotated[
        str | None, typer.Option("--qbwc-user", help="User name the Web Connector logs in with.")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="Post reports as 'bill' (default), 'check' or 'journal'.")
    ] = None,
    check_account: Annotated[
        str | None, typer.Option("--check-account", help="With --mode check: the bank account checks are written from.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing config.toml.")] = False,
) -> None:
    """Write config.toml and create the state file.

    Secrets come from prompts, or from MLCONNECTOR_EXPENSIFY_SECRET and MLCONNECTOR_QBWC_PASSWORD with
    --non-interactive. The Web Connector password is stored only as a salted scrypt hash.
    """
    from mlconnector.services.init import InitValues, initialize

    app_ctx = app_context(ctx)
    paths = app_ctx.paths
    if paths.config_file.exists() and not force:
        raise RefusedError(
            f"{paths.config_file} already exists", hint="pass --force to overwrite it (existing values are kept)"
        )
    env = os.environ
    values = InitValues(
        expensify_user=expensify_user,
        expensify_url=expensify_url,
        expensify_secret=env.get(ENV_EXPENSIFY_SECRET) or None,
        qbwc_user=qbwc_user,
        qbwc_password=env.get(ENV_QBWC_PASSWORD) or None,
        mode=mode,
        check_account=check_account,
    )
    if not non_interactive:
        values = _prompt_init_values(values)
    result = initialize(paths, values)
    out = console()
    # POSIX gets mode 0600; on Windows the file inherits its folder's permissions, so say so plainly.
    privacy = "readable by you only" if os.name == "posix" else "it may hold a secret: keep its folder private"
    out.print(f"Wrote {result.config_file} ({privacy})", markup=False)
    out.print(f"State file {result.state_file} (schema {result.schema_version})", markup=False)
    if not result.has_expensify_credentials:
        out.print(
            f"Expensify credentials are not set yet: edit {result.config_file} or set {ENV_EXPENSIFY_SECRET}.",
            markup=False,
        )
    out.print("Next: mlconnector status", markup=False)


def _prompt_init_values(values: Any) -> Any:
    """Ask for whatever the options and environment did not give."""
    expensify_user = values.expensify_user or typer.prompt("Expensify partnerUserID", default="", show_default=False)
    secret = values.expensify_secret or typer.prompt(
        "Expensify partnerUserSecret (hidden; Enter to skip)", default="", hide_input=True, show_default=False
    )
    qbwc_user = values.qbwc_user or typer.prompt("Web Connector user name", default="mlconnector")
    password = values.qbwc_password or typer.prompt(
        "Web Connector password (hidden)", hide_input=True, confirmation_prompt=True
    )
    mode = values.mode or typer.prompt("Post reports as bill, check or journal", default="bill")
    check_account = values.check_account
    if mode.strip().lower() == "check" and not check_account:
        check_account = typer.prompt("Bank account checks are written from (its full name in QuickBooks)")
    return replace(
        values,
        expensify_user=expensify_user or None,
        expensify_secret=secret or None,
        qbwc_user=qbwc_user,
        qbwc_password=password,
        mode=mode,
        check_account=check_account,
    )
