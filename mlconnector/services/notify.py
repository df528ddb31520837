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
import http.client
import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from http.client import HTTPMessage
from typing import IO
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
from mlconnector.store import Store
from mlconnector.store import alerts as alerts_store
from mlconnector.store.audit import AuditEvent

log = logging.getLogger("mlconnector.notify")

EMAIL = "email"
WEBHOOK = "webhook"
DIGEST_EVERY = dt.timedelta(hours=1)
RETRY_AFTER = dt.timedelta(minutes=15)
SMTP_TIMEOUT = 15.0
WEBHOOK_TIMEOUT = 10.0
NO_CHANNEL_FIX = (f"set notify.email_to, notify.email_from and notify.smtp_host (and notify.smtp_user with "
                  f"{ENV_SMTP_PASSWORD} when the server needs a login), or notify.webhook_url, in config.toml")


class ChannelError(MlConnectorError):
    """A channel could not deliver a message; ``hint`` says what to change."""

    def __init__(self, channel: str, message: str, *, hint: str) -> None:
        super().__init__(redact_text(message), hint=redact_text(hint))
        self.channel = channel


@dataclass(frozen=True)
class Message:
    """What a channel delivers: a subject and a plain-text body."""

    subject: str
    body: str


# Delivers a message through the named channel; raises ChannelError when it cannot. Tests pass their own.
Sender = Callable[[str, Message], None]


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


def _email_settings(notify: NotifyConfig, password: str | None) -> str:
    """The sender address, once the settings an e-mail needs are all there.

    Raises:
        ChannelError: a setting is missing.
    """
    missing = [(key, fix) for key, value, fix in (
        ("notify.smtp_host", notify.smtp_host, "your mail server, e.g. smtp.office365.com"),
        ("notify.email_to", notify.email_to, 'e.g. ["controller@example.com"]'),
    ) if not value]
    sender = notify.email_from or (notify.smtp_user if "@" in notify.smtp_user else "")
    if not sender:
        missing.append(("notify.email_from", "the sender address, e.g. mlconnector@example.com"))
    if missing:
        key, fix = missing[0]
        raise ChannelError(EMAIL, f"{key} is missing", hint=f"set it in config.toml: {fix}")
    if notify.smtp_user and not password:
        raise ChannelError(EMAIL, f"{ENV_SMTP_PASSWORD} is not set",
                           hint=f"set it for the account that runs ml-connector (the password of {notify.smtp_user})")
    return sender


def send_email(notify: NotifyConfig, password: str | None, message: Message) -> None:
    """Send ``message`` by SMTP: STARTTLS when ``smtp_starttls`` (port 465: SSL), a login when ``smtp_user``.

    Raises:
        ChannelError: a setting is missing, or the server could not be reached or refused the message.
    """
    sender = _email_settings(notify, password)
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = message.subject, sender, ", ".join(notify.email_to)
    mail["Date"], mail["Message-ID"] = formatdate(localtime=True), make_msgid(domain=sender.rpartition("@")[2])
    mail.set_content(message.body)
    try:
        with _connect(notify) as smtp:
            if notify.smtp_user:
                smtp.login(notify.smtp_user, password or "")
            smtp.send_message(mail)
    except UnicodeEncodeError:
        raise ChannelError(EMAIL, "the SMTP login or password has characters other than plain ASCII, which the "
                           "mail protocol cannot send", hint="use an app password of letters and digits") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise _smtp_error(exc, notify) from None


def _connect(notify: NotifyConfig) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if notify.smtp_port == 465:
        return smtplib.SMTP_SSL(notify.smtp_host, notify.smtp_port, timeout=SMTP_TIMEOUT, context=context)
    smtp = smtplib.SMTP(notify.smtp_host, notify.smtp_port, timeout=SMTP_TIMEOUT)
    try:
        if notify.smtp_starttls:
            smtp.starttls(context=context)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _smtp_error(exc: BaseException, notify: NotifyConfig) -> ChannelError:
    """One line saying what failed and the fix (a server's text can be long: its first 200 characters are kept)."""
    where = f"{notify.smtp_host}:{notify.smtp_port}"
    said = " ".join(str(exc).split())[:200]
    reach = ("check notify.smtp_host and notify.smtp_port (587 with STARTTLS, 465 with SSL) and that this "
             "computer may connect to it (firewall, antivirus mail shields)")
    cases: list[tuple[type[BaseException], str, str]] = [
        (smtplib.SMTPAuthenticationError, f"the mail server {where} refused the login of {notify.smtp_user}",
         f"check notify.smtp_user and {ENV_SMTP_PASSWORD} (an app password where the account uses two-step sign-in)"),
        (smtplib.SMTPNotSupportedError, f"the mail server {where} does not offer what is asked",
         ("STARTTLS missing: use port 465 (SSL), or set notify.smtp_starttls = false only for a relay on this "
          "computer or network; AUTH missing: leave notify.smtp_user empty for a relay that needs no login")),
        (smtplib.SMTPRecipientsRefused, f"the mail server {where} refused the recipients",
         "check notify.email_to (and that the server relays to them for this login)"),
        (smtplib.SMTPSenderRefused, f"the mail server {where} refused the sender",
         "check notify.email_from: many servers accept only the login's own address"),
        (smtplib.SMTPServerDisconnected, f"the mail server {where} closed the connection", reach),
        (smtplib.SMTPException, f"the mail server {where} refused the message", "check the [notify] settings"),
        (ssl.SSLError, f"TLS with the mail server {where} failed",
         "use port 587 with smtp_starttls = true, or 465 for SSL, and check the server's certificate"),
        (OSError, f"could not reach the mail server {where}", reach),
    ]
    for kind, what, fix in cases:
        if isinstance(exc, kind):
            return ChannelError(EMAIL, f"{what}: {said or type(exc).__name__}", hint=fix)
    return ChannelError(EMAIL, f"sending mail through {where} failed: {said}", hint=reach)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected POST would arrive as a GET and look sent: a redirect is an answer to report instead."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: HTTPMessage, newurl: str) -> urllib.request.Request | None:
        return None


def post_webhook(url: str, message: Message) -> None:
    """POST ``{"text": ...}`` to an incoming webhook (Slack, Teams); any 2xx answer counts as sent.

    Raises:
        ChannelError: the URL is not http(s), the host could not be reached, or it answered other than 2xx.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        parts.port  # noqa: B018  (a port that is not a number raises here, before anything is sent)
    except ValueError:
        raise ChannelError(WEBHOOK, "notify.webhook_url is not a usable address",
                           hint="paste the incoming-webhook URL Slack or Teams gave you") from None
    if parts.scheme not in ("http", "https"):
        raise ChannelError(WEBHOOK, "notify.webhook_url is not an http(s) address",
                           hint="paste the incoming-webhook URL Slack or Teams gave you")
    data = json.dumps({"text": f"{message.subject}\n\n{message.body}"}).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "ml-connector"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=WEBHOOK_TIMEOUT) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (ValueError, http.client.HTTPException) as exc:  # never echo the URL: its path is the token
        raise ChannelError(WEBHOOK, f"notify.webhook_url is not a usable address ({type(exc).__name__})",
                           hint="paste the incoming-webhook URL Slack or Teams gave you") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChannelError(WEBHOOK, f"could not reach the webhook at {host}: {reason}",
                           hint=f"check notify.webhook_url and that this computer may reach {host} (proxy, firewall)"
                           ) from None
    if not 200 <= status < 300:
        raise ChannelError(WEBHOOK, f"the webhook at {host} answered HTTP {status}", hint=_webhook_fix(status))


def _webhook_fix(status: int) -> str:
    if status in (401, 403, 404, 410):
        return "the webhook URL is wrong or was removed: create a new incoming webhook and set notify.webhook_url"
    if 300 <= status < 400:
        return "notify.webhook_url is redirected: use the final incoming-webhook URL"
    if status >= 500:
        return "the chat service failed; the next digest tries again"
    return 'check that notify.webhook_url is an incoming webhook that accepts {"text": ...} (Slack, Teams)'


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
