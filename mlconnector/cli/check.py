"""``mlconnector check``: is everything in place? One line per check, each failing one with its fix."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import typer

from mlconnector.cli.context import ExitCode, app_context, console, handle_errors, print_json

if TYPE_CHECKING:
    from mlconnector.config import Config
    from mlconnector.expensify.client import ExpensifyClient
    from mlconnector.services.check import Check

log = logging.getLogger("mlconnector.cli")


@handle_errors
def check(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the configuration, Expensify credentials, state file, serve address, certificate, Web Connector
    contact and blocked work; exit 1 when any check fails.

    Nothing is created or changed, and no secret is shown.
    """
    from mlconnector.services.check import run_checks

    report = run_checks(app_context(ctx).paths, _expensify_client)
    if as_json:
        print_json(report.as_dict())
    else:
        out = console()
        passed, failed, skipped = marks(out.encoding)
        for item in report.checks:
            mark = skipped if item.skipped else passed if item.ok else failed
            out.print(f"{mark} {item.name}: {item.detail}", markup=False)
            if item.fix and not item.ok:
                out.print(f"    fix: {item.fix}", markup=False)
        out.print(_verdict(report.checks), markup=False)
    if not report.ok:
        raise typer.Exit(ExitCode.USER)


def marks(encoding: str) -> tuple[str, str, str]:
    """The passed, failed and skipped marks: ✓ ✗ - where the stream can show them, else OK FAIL SKIP."""
    try:
        "✓✗".encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "OK", "FAIL", "SKIP"
    return "✓", "✗", "-"


def _verdict(checks: tuple[Check, ...]) -> str:
    failed = sum(1 for c in checks if not (c.ok or c.skipped))
    if failed:
        return f"{failed} check{'s' if failed > 1 else ''} failed."
    return "All checks passed."


def _expensify_client(config: Config) -> ExpensifyClient:
    """A client for one quick call: a short timeout and one retry, so an outage does not hold check for minutes."""
    from mlconnector.expensify.client import ExpensifyClient
    from mlconnector.expensify.pacing import RetryPolicy

    user, secret = config.require_expensify_credentials()
    return ExpensifyClient(user, secret, config.expensify.url, retry=RetryPolicy(max_tries=2, base_delay=1.0),
                           timeout=(10.0, 30.0))
