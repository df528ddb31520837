"""Load ``config.toml`` into frozen typed objects, reporting every problem with its key path.

``load_config(path, environ)`` parses once; nothing else reads the file. ``MLCONNECTOR_EXPENSIFY_SECRET``
overrides the secret in the file. Secrets are wrapped in :class:`Secret` so that a ``repr`` or an
f-string never shows them.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from mlconnector import config_values as values
from mlconnector.config_values import Parser
from mlconnector.errors import ConfigError, ConfigProblem
from mlconnector.models import NonReimbursablePolicy, ReimbursableMode, TxnDateRule
from mlconnector.paths import ENV_EXPENSIFY_SECRET
from mlconnector.redact import (
    Secret as Secret,  # re-exported: callers know it as config.Secret
)

DEFAULT_EXPENSIFY_URL = "https://integrations.expensify.com/Integration-Server/ExpensifyIntegrations"
# The company-card policies this version posts (credit_card follows with its transaction kinds).
SUPPORTED_CARD_POLICIES = ("exclude", "journal", "credit_card", "debit_card", "bill")
QBXML_VERSIONS = ("13.0", "16.0")


@dataclass(frozen=True)
class ExpensifyConfig:
    """The ``[expensify]`` section: how to reach the Integration Server and what to export."""

    partner_user_id: str = ""
    partner_user_secret: Secret | None = None
    url: str = DEFAULT_EXPENSIFY_URL
    report_states: tuple[str, ...] = ("APPROVED", "REIMBURSED", "ARCHIVED")
    start_date: dt.date | None = None
    policy_ids: tuple[str, ...] = ()
    export_label: str = "ml-connector"
    mark_exported: bool = True
    watch_days: int = 90  # how long after posting a report is read again (reimbursement, edits)


@dataclass(frozen=True)
class QuickBooksConfig:
    """The ``[quickbooks]`` section: how reports become QuickBooks transactions."""

    mode: ReimbursableMode = ReimbursableMode.BILL
    txn_date: TxnDateRule = TxnDateRule.LAST_EXPENSE
    ap_account: str = "Accounts Payable"
    journal_credit_account: str = "Accounts Payable"
    qbxml_version: str = "13.0"
    max_lines_per_txn: int = 250
    max_lines_per_message: int = 500
    class_tag_level: int = 1
    customer_tag_level: int = 2
    non_reimbursable: NonReimbursablePolicy = NonReimbursablePolicy.EXCLUDE
    card_account: str = ""
    company_file: str = ""
    check_account: str = ""
    check_to_print: bool = False
    card_vendor_fallback: str = "Credit Card Misc."
    card_bill_vendor: str = ""
    negative_reports: str = "vendor_credit"
    journal_lines: str = "expense"
    receipt_links: bool = True
    class_report_field: str = ""
    customer_report_field: str = ""
    closed_period: str = "next_open_day"
    bill_payment_account: str = ""  # the bank account reimbursements are paid from; "" = no bill payments


@dataclass(frozen=True)
class QbwcConfig:
    """The ``[qbwc]`` section: how the Web Connector reaches and logs in to ``mlconnector serve``."""

    username: str = "mlconnector"
    password_hash: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    run_every_minutes: int = 15
    # How long an update that has a request inside QuickBooks keeps a second one out ("busy"): a slow
    # QuickBooks may still finish that request, and writing the same postings again would duplicate them.
    takeover_after_minutes: int = 10
    # HTTPS for a Web Connector on another machine: serve uses these unless --certfile/--keyfile are given.
    certfile: str = ""
    keyfile: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    """The ``[schedule]`` section: pulls ``serve`` runs by itself (under the same lock as ``mlconnector pull``)."""

    pull_at: tuple[str, ...] = ()  # local times of day, "HH:MM"
    pull_every_minutes: int = 0  # 0 = off


@dataclass(frozen=True)
class NotifyConfig:
    """The ``[notify]`` section: where alerts go when something needs a person. The SMTP password comes from
    MLCONNECTOR_SMTP_PASSWORD only."""

    email_to: tuple[str, ...] = ()
    email_from: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_starttls: bool = True
    webhook_url: str = ""
    silent_after_hours: int = 26


@dataclass(frozen=True)
class Config:
    """The whole configuration, validated."""

    expensify: ExpensifyConfig = field(default_factory=ExpensifyConfig)
    quickbooks: QuickBooksConfig = field(default_factory=QuickBooksConfig)
    qbwc: QbwcConfig = field(default_factory=QbwcConfig)
    source: Path | None = None
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def require_expensify_credentials(self) -> tuple[str, Secret]:
        """The partner credentials, or a ConfigError naming each missing key and the fix.

        Raises:
            ConfigError: a credential is missing.
        """
        problems = []
        if not self.expensify.partner_user_id:
            problems.append(ConfigProblem("expensify.partner_user_id", "missing", "run mlconnector init"))
        if self.expensify.partner_user_secret is None:
            problems.append(
                ConfigProblem(
                    "expensify.partner_user_secret",
                    "missing",
                    f"set {ENV_EXPENSIFY_SECRET} or run mlconnector init",
                )
            )
        if problems:
            raise ConfigError(problems, source=str(self.source) if self.source else None)
        assert self.expensify.partner_user_secret is not None
        return self.expensify.partner_user_id, self.expensify.partner_user_secret

    def require_qbwc_login(self) -> tuple[str, str]:
        """The Web Connector user name and password hash, or a ConfigError.

        Raises:
            ConfigError: the user or the password hash is missing.
        """
        problems = []
        if not self.qbwc.username:
            problems.append(ConfigProblem("qbwc.username", "missing", "run mlconnector init"))
        if not self.qbwc.password_hash:
            problems.append(
                ConfigProblem("qbwc.password_hash", "missing", "run mlconnector init --force to set a password")
            )
        if problems:
            raise ConfigError(problems)
        return self.qbwc.username, self.qbwc.password_hash


_SECTIONS: dict[str, tuple[type[Any], dict[str, tuple[Parser, str]]]] = {
    "expensify": (
        ExpensifyConfig,
        {
            "partner_user_id": (values.as_text, "your Expensify partnerUserID, like aa_name_domain_com"),
            "partner_user_secret": (values.secret, f"or set {ENV_EXPENSIFY_SECRET}"),
            "url": (values.url, "the Integration Server URL"),
            "report_states": (values.report_states, 'for example ["APPROVED", "REIMBURSED", "ARCHIVED"]'),
            "start_date": (values.date, "for example 2026-01-01"),
            "policy_ids": (values.text_list, 'for example ["0810E551A5F2A9C2"]'),
            "export_label": (values.nonempty, "the label stamped on reports once posted"),
            "mark_exported": (values.boolean, "true or false"),
            "watch_days": (values.int_range(0, 3650), "days after posting a report is read again; 0 turns it off"),
        },
    ),
    "quickbooks": (
        QuickBooksConfig,
        {
            "mode": (lambda x: ReimbursableMode(values.choice(*ReimbursableMode)(x)),
                     "use " + " or ".join(f'"{m.value}"' for m in ReimbursableMode)),
            "txn_date": (
                lambda x: TxnDateRule(values.choice(*(r.value for r in TxnDateRule))(x)),
                "use last_expense, submitted, approved or posting_day",
            ),
            "ap_account": (values.nonempty, "the A/P account's full name in QuickBooks"),
            "journal_credit_account": (values.nonempty, "the account journal entries credit"),
            "qbxml_version": (values.choice(*QBXML_VERSIONS), 'use "13.0" or "16.0"'),
            "max_lines_per_txn": (values.int_range(1, 10_000), "for example 250"),
            "max_lines_per_message": (values.int_range(1, 100_000), "for example 500"),
            "class_tag_level": (values.int_range(0, 9), "0 turns classes off"),
            "customer_tag_level": (values.int_range(0, 9), "0 turns customers off"),
            "non_reimbursable": (
                lambda x: NonReimbursablePolicy(values.choice(*SUPPORTED_CARD_POLICIES)(x)),
                "use " + ", ".join(f'"{p}"' for p in SUPPORTED_CARD_POLICIES),
            ),
            "card_account": (values.as_text, "the credit card account's full name"),
            "company_file": (values.as_text, 'leave "" to use the company file open in QuickBooks'),
            "check_account": (values.as_text, "the bank account's full name checks are written from"),
            "check_to_print": (values.boolean, "true or false"),
            "card_vendor_fallback": (values.nonempty, "the payee of a card charge whose merchant matches no vendor"),
            "card_bill_vendor": (values.as_text, "the vendor company-card bills are owed to (the card issuer)"),
            "negative_reports": (values.choice("vendor_credit", "block"), 'use "vendor_credit" or "block"'),
            "journal_lines": (values.choice("expense", "grouped"), 'use "expense" or "grouped"'),
            "receipt_links": (values.boolean, "true or false"),
            "class_report_field": (values.as_text, 'the Expensify report field holding the class, e.g. "Department"'),
            "customer_report_field": (values.as_text, 'the Expensify report field holding the customer:job, e.g. "Client"'),
            "closed_period": (values.choice("next_open_day", "block"), 'use "next_open_day" or "block"'),
            "bill_payment_account": (values.as_text, "the bank account's full name reimbursements are paid from"),
        },
    ),
    "qbwc": (
        QbwcConfig,
        {
            "username": (values.nonempty, "the user name the Web Connector sends"),
            "password_hash": (values.as_text, "set it with mlconnector init --force"),
            "host": (values.nonempty, "for example 127.0.0.1"),
            "port": (values.int_range(1, 65535), "for example 8080"),
            "public_url": (values.optional_url, "for example https://qb.example.com/qbwc"),
            "run_every_minutes": (values.int_range(1, 1440), "for example 15"),
            "takeover_after_minutes": (values.int_range(1, 1440), "for example 10"),
            "certfile": (values.as_text, "the PEM certificate serve uses for HTTPS, e.g. C:\\certs\\connector.pem"),
            "keyfile": (values.as_text, "the PEM private key of certfile"),
        },
    ),
    "schedule": (
        ScheduleConfig,
        {
            "pull_at": (values.times_of_day, 'local times, for example ["06:00", "13:30"]'),
            "pull_every_minutes": (values.int_range(0, 10_080), "0 turns it off; for example 60"),
        },
    ),
    "notify": (
        NotifyConfig,
        {
            "email_to": (values.email_list, 'for example ["controller@example.com"]'),
            "email_from": (values.as_text, "the sender address, for example mlconnector@example.com"),
            "smtp_host": (values.as_text, "your mail server, for example smtp.office365.com"),
            "smtp_port": (values.int_range(1, 65535), "587 (STARTTLS) or 465"),
            "smtp_user": (values.as_text, "the SMTP login; its password goes in MLCONNECTOR_SMTP_PASSWORD"),
            "smtp_starttls": (values.boolean, "true or false"),
            "webhook_url": (values.secret_url, "a Slack or Teams incoming-webhook URL"),
            "silent_after_hours": (values.int_range(1, 24 * 30), "for example 26"),
        },
    ),
}


def parse_config(
    data: Mapping[str, Any], environ: Mapping[str, str] | None = None, source: Path | None = None
) -> Config:
    """Validate a config mapping (as read from TOML) into a Config, collecting every problem.

    Raises:
        ConfigError: one or more keys are unknown, of the wrong type or out of range.
    """
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    sections: dict[str, Any] = {}
    for name in data:
        if name not in _SECTIONS:
            problems.append(ConfigProblem(name, "unknown section", f"use {', '.join(_SECTIONS)}"))
    for name, (cls, spec) in _SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, Mapping):
            problems.append(ConfigProblem(name, "must be a [section]", f"write [{name}] on its own line"))
            raw = {}
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in spec:
                problems.append(ConfigProblem(f"{name}.{key}", "unknown key", f"known keys: {', '.join(spec)}"))
                continue
            parser, fix = spec[key]
            try:
                values[key] = parser(value)
            except ValueError as exc:
                problems.append(ConfigProblem(f"{name}.{key}", str(exc), fix))
        sections[name] = values
    env_secret = env.get(ENV_EXPENSIFY_SECRET)
    if env_secret:
        sections["expensify"]["partner_user_secret"] = Secret(env_secret)
    problems.extend(_cross_checks(sections))
    if problems:
        raise ConfigError(problems, source=str(source) if source else None)
    return Config(
        expensify=ExpensifyConfig(**sections["expensify"]),
        quickbooks=QuickBooksConfig(**sections["quickbooks"]),
        qbwc=QbwcConfig(**sections["qbwc"]),
        source=source,
        schedule=ScheduleConfig(**sections["schedule"]),
        notify=NotifyConfig(**sections["notify"]),
    )


def _cross_checks(sections: Mapping[str, Mapping[str, Any]]) -> list[ConfigProblem]:
    qb = sections["quickbooks"]
    per_txn = qb.get("max_lines_per_txn", QuickBooksConfig.max_lines_per_txn)
    per_msg = qb.get("max_lines_per_message", QuickBooksConfig.max_lines_per_message)
    problems = []
    if isinstance(per_txn, int) and isinstance(per_msg, int) and per_msg < per_txn:
        problems.append(
            ConfigProblem(
                "quickbooks.max_lines_per_message",
                f"is smaller than max_lines_per_txn ({per_msg} < {per_txn})",
                "raise it to at least max_lines_per_txn",
            )
        )
    policy = qb.get("non_reimbursable")
    needs = [
        (qb.get("mode") is ReimbursableMode.CHECK, "check_account", 'mode = "check"',
         "set the bank account's full name checks are written from"),
        (policy is NonReimbursablePolicy.JOURNAL, "card_account", 'non_reimbursable = "journal"',
         "set the credit card account's full name"),
        (policy is NonReimbursablePolicy.CREDIT_CARD, "card_account", 'non_reimbursable = "credit_card"',
         "set the full name of the credit card account that unmapped cards post to "
         "(map each card with: mlconnector map set card LAST4 ACCOUNT)"),
        (policy is NonReimbursablePolicy.DEBIT_CARD, "card_account", 'non_reimbursable = "debit_card"',
         "set the bank account's full name the debit card draws on"),
        (policy is NonReimbursablePolicy.BILL, "card_bill_vendor", 'non_reimbursable = "bill"',
         "set the vendor company-card bills are owed to (the card issuer)"),
    ]
    for applies, key, why, fix in needs:
        if applies and not qb.get(key):
            problems.append(ConfigProblem(f"quickbooks.{key}", f"missing while {why}", fix))
    return problems


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate ``config.toml``.

    Raises:
        ConfigError: the file is missing, is not valid TOML, or has invalid keys.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(str(path), "not found", "run mlconnector init, or pass --home/--config")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), f"cannot be read: {exc}", "check the file")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            [ConfigProblem(str(path), f"is not valid TOML: {exc}", "fix that line or run mlconnector init --force")]
        ) from None
    return parse_config(data, environ, source=path)


def config_to_toml(config: Config, *, include_secret: bool = True) -> dict[str, Any]:
    """The TOML document for a Config (what ``init`` writes): every key of every section, in the order of
    :data:`_SECTIONS`; a key without a value (no start date, no secret) is left out."""
    document: dict[str, Any] = {}
    for name, (_, spec) in _SECTIONS.items():
        section = getattr(config, name)
        values = {key: _toml_value(getattr(section, key)) for key in spec}
        if not include_secret:
            values.pop("partner_user_secret", None)
        document[name] = {key: value for key, value in values.items() if value is not None}
    return document


def _toml_value(value: Any) -> Any:
    """A config value as TOML writes it: enums by value, lists for tuples, days as text, a secret revealed."""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def write_config(path: Path, config: Config) -> None:
    """Write ``config.toml`` atomically, readable by its owner only (it may hold a secret).

    A crash mid-write leaves the old file (or none), never half a file.
    """
    import tomli_w

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = tomli_w.dumps(config_to_toml(config))
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
