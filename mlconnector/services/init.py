"""Create or update an installation: config.toml (0600) and the state file (``mlconnector init``).

Folders init creates are 0700 and the state file 0600 on POSIX (see paths.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from mlconnector.config import (
    Config,
    ExpensifyConfig,
    QbwcConfig,
    Secret,
    load_config,
    write_config,
)
from mlconnector.errors import ConfigError, ConfigProblem
from mlconnector.models import ReimbursableMode
from mlconnector.passwords import hash_password
from mlconnector.paths import ENV_QBWC_PASSWORD, Paths, make_private_dir
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent


@dataclass(frozen=True)
class InitValues:
    """What the user gave to ``init``; None means "keep the existing value or the default"."""

    expensify_user: str | None = None
    expensify_url: str | None = None
    expensify_secret: str | None = None
    qbwc_user: str | None = None
    qbwc_password: str | None = None
    mode: str | None = None
    check_account: str | None = None
    start_date: dt.date | None = None  # the first pull's start; None: keep it, or the previous month's first day


MIN_PASSWORD = 8  # the Web Connector password guards the QuickBooks company file


def default_start_date(today: dt.date) -> dt.date:
    """The first day of the previous month: a first pull that catches last month's close and this month."""
    first = today.replace(day=1)
    return (first - dt.timedelta(days=1)).replace(day=1)


@dataclass(frozen=True)
class InitResult:
    """What ``init`` wrote."""

    config_file: Path
    state_file: Path
    schema_version: str
    has_expensify_credentials: bool
    start_date: dt.date | None = None


def _existing(paths: Paths) -> Config:
    """The current config when it loads, so that ``init --force`` keeps what it is not told to change."""
    if not paths.config_file.exists():
        return Config()
    try:
        return load_config(paths.config_file, environ={})
    except ConfigError as exc:
        # Falling back to defaults would silently drop every good value (accounts, mode, secret).
        raise ConfigError(exc.problems, source=exc.source) from None


def build_config(base: Config, values: InitValues, today: dt.date | None = None) -> Config:
    """Apply the init values to a base config, validating each one.

    Raises:
        ConfigError: a value is invalid or the Web Connector password is missing.
    """
    problems = []
    mode = base.quickbooks.mode
    if values.mode is not None:
        try:
            mode = ReimbursableMode(values.mode.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in ReimbursableMode)
            problems.append(ConfigProblem("quickbooks.mode", f"must be one of {choices}, not {values.mode!r}",
                                          "use --mode bill"))
    check_account = (values.check_account or base.quickbooks.check_account).strip()
    if mode is ReimbursableMode.CHECK and not check_account:
        problems.append(ConfigProblem("quickbooks.check_account", 'missing while mode = "check"',
                                      'pass --check-account "Checking" (the bank account checks are written from)'))
    url = values.expensify_url or base.expensify.url
    if not url.startswith(("https://", "http://")):
        problems.append(ConfigProblem("expensify.url", f"must start with https:// (got {url!r})", "fix --expensify-url"))
    password_hash = base.qbwc.password_hash
    if values.qbwc_password:
        password_hash = hash_password(values.qbwc_password)
    elif not password_hash:
        problems.append(
            ConfigProblem("qbwc.password_hash", "no Web Connector password given", f"set {ENV_QBWC_PASSWORD}")
        )
    username = (values.qbwc_user or base.qbwc.username or "mlconnector").strip()
    if problems:
        raise ConfigError(problems)
    secret = Secret(values.expensify_secret) if values.expensify_secret else base.expensify.partner_user_secret
    # Without a start date the first scheduled pull would fail every day (nothing records a last pull yet).
    start = values.start_date or base.expensify.start_date or default_start_date(today or dt.date.today())
    expensify: ExpensifyConfig = replace(
        base.expensify,
        partner_user_id=(values.expensify_user or base.expensify.partner_user_id).strip(),
        partner_user_secret=secret,
        url=url,
        start_date=start,
    )
    qbwc: QbwcConfig = replace(base.qbwc, username=username, password_hash=password_hash)
    quickbooks = replace(base.quickbooks, mode=mode, check_account=check_account)
    return replace(base, expensify=expensify, quickbooks=quickbooks, qbwc=qbwc)


def initialize(paths: Paths, values: InitValues, *, today: dt.date | None = None) -> InitResult:
    """Write config.toml and create (or migrate) the state file, recording it in the audit log.

    Raises:
        ConfigError: a value is invalid or the password is missing.
        StoreError: the state file cannot be created.
    """
    config = build_config(_existing(paths), values, today)
    make_private_dir(paths.config_file.parent)  # a folder init creates is the owner's only (POSIX)
    write_config(paths.config_file, config)
    store = Store.open(paths.state_file)
    try:
        with store.atomic():
            store.audit.append(
                AuditEvent.INITIALIZED,
                actor="init",
                detail={
                    "config_file": str(paths.config_file),
                    "mode": config.quickbooks.mode.value,
                    "qbwc_user": config.qbwc.username,
                },
            )
        version = store.schema_version()
    finally:
        store.close()
    return InitResult(
        config_file=paths.config_file,
        state_file=paths.state_file,
        schema_version=version,
        has_expensify_credentials=bool(config.expensify.partner_user_id and config.expensify.partner_user_secret),
        start_date=config.expensify.start_date,
    )
