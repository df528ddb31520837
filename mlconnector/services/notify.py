"""Alerts: tell a person, by e-mail and/or a Slack or Teams webhook, when something needs them, and only then.

``send_alerts`` is what ``pull`` and ``serve`` call after their own work has committed. It never raises:
a pull or a Web Connector session must not fail because a mail server is down. Rules:

- each item (see :mod:`mlconnector.services.alerts`) is told once per channel; one that goes away and
  comes back later is told again;
- a channel sends at most one digest an hour; items found in between wait for the next one. A channel
  that failed logs one line and tries again after ``RETRY_AFTER``, with the items it could not tell;
- each digest sent is an ``alert_sent`` row in the audit log (channel, counts, item keys; never the body).

``send_test`` (``mlconnector notify test``) sends a test message through every configured channel now.
The SMTP password comes from ``MLCONNECTOR_SMTP_PASSWORD`` only and is registered as a secret, as is the
webhook URL (it carries a token): neither appears in a log line, an error, the audit log or a message.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mlconnector.config import Config, NotifyConfig
from mlconnector.errors import ConfigError, ConfigProblem, MlConnectorError
from mlconnector.paths import ENV_SMTP_PASSWORD
from mlconnector.redact import redact_text, register_secret
from mlconnector.services.alerts import (
    Digest,
    build_digest,
    collect_items,
    company_label,
)
from mlconnector.services.notify_channels import EMAIL, WEBHOOK, Sender

# Re-exported: callers and tests take the channels from here.
from mlconnector.services.notify_channels import ChannelError as ChannelError
from mlconnector.services.notify_channels import Message as Message
from mlconnector.services.notify_channels import post_webhook as post_webhook
from mlconnector.services.notify_channels import send_email as send_email
from mlconnector.store import Store
from mlconnector.store import alerts as alerts_store
from mlconnector.store.audit import AuditEvent

log = logging.getLogger("mlconnector.notify")

DIGEST_EVERY = dt.timedelta(hours=1)
RETRY_AFTER = dt.timedelta(minutes=15)
NO_CHANNEL_FIX = (f"set notify.email_to, notify.email_from and notify.smtp_host (and notify.smtp_user with "
                  f"{ENV_SMTP_PASSWORD} when the server needs a login), or notify.webhook_url, in config.toml")


@dataclass
class AlertResult:
    """What one ``send_alerts`` call did (for the caller's log line; nothing in it is secret)."""

    trigger: str
    channels: tuple[str, ...] = ()
    sent: dict[str, tuple[str, ...]] = field(default_factory=dict)  # channel -> item keys told
    failed: dict[str, str] = field(default_factory=dict)  # channel -> error and fix
    waiting: bool = False  # every channel had sent within the hour: nothing was checked
    error: str | None = None  # alerts could not be checked at all (logged)


@dataclass(frozen=True)
class ChannelOutcome:
    """How a test message went through one channel."""

    channel: str
    sent: bool
    detail: str  # where it went (never the webhook URL), or the error
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The JSON form (``notify test --json``)."""
        return {"channel": self.channel, "sent": self.sent, "detail": self.detail, "fix": self.fix}


def configured_channels(notify: NotifyConfig) -> tuple[str, ...]:
    """The channels the ``[notify]`` section sets up (a half-set e-mail channel counts: it reports what is missing)."""
    return tuple(name for name, on in ((EMAIL, bool(notify.email_to or notify.smtp_host)),
                                       (WEBHOOK, bool(notify.webhook_url))) if on)


def smtp_password(environ: Mapping[str, str] | None = None) -> str | None:
    """The SMTP password from ``MLCONNECTOR_SMTP_PASSWORD`` (registered as a secret), or None."""
    value = (os.environ if environ is None else environ).get(ENV_SMTP_PASSWORD) or None
    register_secret(value)
    return value


def register_notify_secrets(config: Config, environ: Mapping[str, str] | None = None) -> None:
    """Make every secret alerts know about masked wherever text is redacted."""
    secret = config.expensify.partner_user_secret
    register_secret(secret.reveal() if secret else None)
    register_secret(config.notify.webhook_url or None)
    smtp_password(environ)


def default_sender(config: Config, environ: Mapping[str, str] | None = None) -> Sender:
    """The real channels: SMTP for ``email``, an HTTPS POST for ``webhook``."""
    notify = config.notify

    def send(channel: str, message: Message) -> None:
        if channel == EMAIL:
            send_email(notify, smtp_password(environ), message)
        elif channel == WEBHOOK:
            post_webhook(notify.webhook_url, message)
        else:
            raise ChannelError(channel, f"unknown channel {channel!r}", hint="use email or webhook")

    return send


def send_alerts(store: Store, config: Config, *, now: dt.datetime, trigger: str, send: Sender | None = None,
                environ: Mapping[str, str] | None = None) -> AlertResult:
    """Tell what newly needs a person through every configured channel; never raises.

    Call it after the pull (``trigger="pull"``) or the Web Connector session (``"serve"``) has committed,
    outside any ``store.atomic()`` block. With no channel configured it returns at once.
    """
    channels = configured_channels(config.notify)
    if not channels:
        return AlertResult(trigger)
    try:
        register_notify_secrets(config, environ)
        return _send_alerts(store, config, now=_utc(now), trigger=trigger, channels=channels, send=send,
                            environ=environ)
    except Exception as exc:  # alerts must never fail the pull or the session that called them
        text = _one_line(exc)
        log.error("alerts after the %s could not be checked: %s", trigger, text)
        return AlertResult(trigger, channels, error=text)


def _utc(now: dt.datetime) -> dt.datetime:
    return (now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _send_alerts(store: Store, config: Config, *, now: dt.datetime, trigger: str, channels: tuple[str, ...],
                 send: Sender | None, environ: Mapping[str, str] | None) -> AlertResult:
    result = AlertResult(trigger, channels)
    with store.atomic():  # claim the open channels, so that a pull and serve checking together send once
        states = alerts_store.channel_states(store)
        ready = [c for c in channels if c not in states or dt.datetime.fromisoformat(states[c].next_at) <= now]
        for channel in ready:
            alerts_store.hold(store, channel, _stamp(now + RETRY_AFTER))
    if not ready:
        result.waiting = True
        return result
    items = collect_items(store, config, now=now)
    with store.atomic():
        alerts_store.forget_gone(store, {i.key for i in items})
    sender = send or default_sender(config, environ)
    company = company_label(store, config)
    for channel in ready:
        told = alerts_store.sent_keys(store, channel)
        new = [i for i in items if i.key not in told]
        if new:
            _deliver(store, channel, build_digest(new, company=company, now=now, trigger=trigger), sender, now,
                     trigger, result)
        else:  # nothing to tell: the channel stays open for the next item
            with store.atomic():
                alerts_store.hold(store, channel, _stamp(now))
    return result


def _deliver(store: Store, channel: str, digest: Digest, sender: Sender, now: dt.datetime, trigger: str,
             result: AlertResult) -> None:
    """Send one digest through one channel and record the outcome (audit row when sent, log line when not)."""
    try:
        sender(channel, Message(digest.subject, digest.body))
    except Exception as exc:  # a channel's failure (or a fake's) must not stop the other channel
        problem = _one_line(exc)
        log.warning("alert digest through %s not sent (%d item(s) kept for the next try): %s",
                    channel, len(digest.keys), problem)
        with store.atomic():
            alerts_store.record_attempt(store, channel, at=_stamp(now), next_at=_stamp(now + RETRY_AFTER),
                                        error=problem)
        result.failed[channel] = problem
        return
    with store.atomic():
        alerts_store.mark_sent(store, channel, digest.keys, _stamp(now))
        alerts_store.record_attempt(store, channel, at=_stamp(now), next_at=_stamp(now + DIGEST_EVERY), error=None)
        store.audit.append(AuditEvent.ALERT_SENT, actor=trigger, detail={
            "channel": channel, "subject": digest.subject, "counts": digest.counts, "items": list(digest.keys)})
    log.info("alert digest sent through %s: %s", channel, digest.subject)
    result.sent[channel] = digest.keys


def _one_line(exc: BaseException) -> str:
    hint = exc.hint if isinstance(exc, MlConnectorError) else None
    text = str(exc) if isinstance(exc, MlConnectorError) else f"{type(exc).__name__}: {exc}"
    return " ".join(redact_text(text + (f" — {hint}" if hint else "")).split())


def notify_test_message(company: str, now: dt.datetime) -> Message:
    """The message ``notify test`` sends."""
    return Message(
        "ml-connector: test alert",
        f"This is a test from ml-connector for {company}, sent {_utc(now):%Y-%m-%d %H:%M} UTC by "
        "mlconnector notify test.\n\nAlerts come here when reports are blocked or fail, change after posting or "
        "are duplicated in QuickBooks, when Expensify fails on consecutive pulls, and when the Web Connector "
        "stays silent while work waits. Each item is told once, in at most one digest an hour.")


def send_test(config: Config, *, company: str, now: dt.datetime, send: Sender | None = None,
              environ: Mapping[str, str] | None = None) -> list[ChannelOutcome]:
    """Send a test message through every configured channel now (no hourly limit), one outcome each.

    Raises:
        ConfigError: no channel is configured.
    """
    channels = configured_channels(config.notify)
    if not channels:
        raise ConfigError([ConfigProblem("notify", "no alert channel is configured", NO_CHANNEL_FIX)],
                          source=str(config.source) if config.source else None)
    register_notify_secrets(config, environ)
    sender = send or default_sender(config, environ)
    message = notify_test_message(company, now)
    outcomes = []
    for channel in channels:
        try:
            sender(channel, message)
        except ChannelError as exc:
            outcomes.append(ChannelOutcome(channel, False, redact_text(str(exc)), exc.hint))
            continue
        except Exception as exc:  # no channel may end the test in "unexpected": say which failed, and how
            log.exception("notify test: the %s channel failed unexpectedly", channel)
            outcomes.append(ChannelOutcome(channel, False, redact_text(f"{channel} failed: {type(exc).__name__}"),
                                           "details are in the log file"))
            continue
        outcomes.append(ChannelOutcome(channel, True, _where(config.notify, channel)))
    return outcomes


def _where(notify: NotifyConfig, channel: str) -> str:
    if channel == EMAIL:
        return f"sent to {', '.join(notify.email_to)} through {notify.smtp_host}:{notify.smtp_port}"
    return f"posted to the webhook at {urlsplit(notify.webhook_url).hostname or '?'}"
