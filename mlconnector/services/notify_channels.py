"""The alert channels: one plain-text e-mail over SMTP (STARTTLS, or SSL on 465), and one JSON POST
``{"text": ...}`` to an incoming webhook (Slack, Teams). Each raises :class:`ChannelError` with the fix;
nothing here names the webhook's URL (it holds a token) or the SMTP password."""

from __future__ import annotations

import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from http.client import HTTPMessage
from typing import IO
from urllib.parse import urlsplit

from mlconnector.config import NotifyConfig
from mlconnector.errors import MlConnectorError
from mlconnector.paths import ENV_SMTP_PASSWORD
from mlconnector.redact import redact_text

EMAIL = "email"
WEBHOOK = "webhook"
SMTP_TIMEOUT = 15.0
WEBHOOK_TIMEOUT = 10.0


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
