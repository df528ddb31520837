"""Alerts (#17): one digest of what newly needs a person, by e-mail and webhook, each item told once.

The mail server and the webhook are real sockets on 127.0.0.1: a small SMTP server written here (EHLO,
AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT) and an http.server that records POSTs.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import http.server
import json
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from mlconnector.config import Config, ExpensifyConfig, NotifyConfig, QuickBooksConfig
from mlconnector.models import PostingState
from mlconnector.redact import Secret
from mlconnector.services.alerts import AlertKind, collect_items, subject_line
from mlconnector.services.mappings import set_mapping
from mlconnector.services.notify import (
    AlertResult,
    ChannelError,
    Message,
    post_webhook,
    send_alerts,
    send_email,
)
from mlconnector.services.queue import plan_and_queue
from mlconnector.services.replay import replay_report
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.postings import postings_for_report, transition
from mlconnector.store.pulls import finish_pull, start_pull
from mlconnector.store.reports import save_report

from .factories import report

SMTP_PASSWORD = "smtp-pass-4567"
EXPENSIFY_SECRET = "exp-secret-8910"
WEBHOOK_TOKEN = "T0KEN-abcdef123456"
T0 = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.timezone.utc)
ENV = {"MLCONNECTOR_SMTP_PASSWORD": SMTP_PASSWORD}


# --- a loopback SMTP server -------------------------------------------------------------------------------

@dataclass
class SmtpServer:
    """What the server received, and how it behaves (``refuse_data``: answer DATA with 451)."""

    port: int = 0
    user: str = "mlc"
    password: str = SMTP_PASSWORD
    refuse_data: bool = False
    logins: list[tuple[str, str]] = field(default_factory=list)
    mails: list[EmailMessage] = field(default_factory=list)

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.mails]


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpTcp

    def say(self, line: str) -> None:
        self.wfile.write(line.encode("ascii") + b"\r\n")

    def read(self) -> str:
        return self.rfile.readline().decode("utf-8").rstrip("\r\n")

    def handle(self) -> None:
        state = self.server.state
        self.say("220 127.0.0.1 ESMTP test")
        while True:
            line = self.read()
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if not line or verb == "QUIT":
                self.say("221 bye")
                return
            if verb == "EHLO":
                self.say("250-127.0.0.1")
                self.say("250-AUTH PLAIN LOGIN")
                self.say("250 8BITMIME")
            elif verb == "AUTH":
                self.auth(state, arg)
            elif verb == "DATA":
                if state.refuse_data:
                    self.say("451 4.3.0 mailbox unavailable, try later")
                    continue
                self.say("354 go ahead")
                lines = []
                while (text := self.read()) != ".":
                    lines.append(text[1:] if text.startswith("..") else text)
                parsed = email.message_from_string("\n".join(lines) + "\n", policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                state.mails.append(parsed)
                self.say("250 queued")
            else:  # HELO, MAIL, RCPT, RSET, NOOP
                self.say("250 ok")

    def auth(self, state: SmtpServer, arg: str) -> None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            if not initial:
                self.say("334 ")
                initial = self.read()
            _, user, password = base64.b64decode(initial).decode().split("\0")
        else:
            self.say("334 VXNlcm5hbWU6")
            user = base64.b64decode(self.read()).decode()
            self.say("334 UGFzc3dvcmQ6")
            password = base64.b64decode(self.read()).decode()
        state.logins.append((user, password))
        self.say("235 ok" if (user, password) == (state.user, state.password) else "535 5.7.8 authentication failed")


class _SmtpTcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: SmtpServer) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.state = state


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    state = SmtpServer()
    server = _SmtpTcp(state)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


# --- a loopback webhook -----------------------------------------------------------------------------------

@dataclass
class Webhook:
    port: int = 0
    status: int = 200
    posts: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{WEBHOOK_TOKEN}"


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        state = self.server.state
        if 200 <= state.status < 300:
            assert self.headers.get("Content-Type") == "application/json"
            state.posts.append(json.loads(body))
        self.send_response(state.status)
        if 300 <= state.status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return


class _HookServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: Webhook) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.state = state


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    state = Webhook()
    server = _HookServer(state)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield state
    server.shutdown()
    server.server_close()


# --- helpers ------------------------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kwargs: float) -> dt.datetime:
        self.now += dt.timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(clock: Clock) -> Iterator[Store]:
    store = Store.memory(now=clock)
    yield store
    store.close()


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """Every record of the notify logger, however the CLI tests left logging configured."""
    caught: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("mlconnector.notify")
    handler, level = Keep(logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield caught
    logger.removeHandler(handler)
    logger.setLevel(level)


def config_for(smtp: SmtpServer | None, hook: Webhook | None, **notify: object) -> Config:
    values: dict[str, object] = {}
    if smtp is not None:
        values.update(email_to=("controller@example.com",), email_from="mlconnector@example.com",
                      smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_user="mlc", smtp_starttls=False)
    if hook is not None:
        values["webhook_url"] = hook.url
    values.update(notify)
    return Config(expensify=ExpensifyConfig(partner_user_id="aa_user", partner_user_secret=Secret(EXPENSIFY_SECRET)),
                  notify=NotifyConfig(**values))  # type: ignore[arg-type]


def block_bob(db: Store, rid: str = "R3") -> None:
    """A report blocked at planning: no vendor for bob@example.com."""
    save_report(db, report(rid, submitter_email="bob@example.com"))
    plan_and_queue(db, QuickBooksConfig(), today=dt.date(2026, 4, 1))


def queue_ann(db: Store, rid: str = "R1") -> None:
    save_report(db, report(rid))
    set_mapping(db, "employee", "ann@example.com", "Ann Smith", actor="t")
    plan_and_queue(db, QuickBooksConfig(), today=dt.date(2026, 4, 1))


def fail(db: Store, rid: str) -> None:
    posting = postings_for_report(db, rid)[0]
    transition(db, posting.id, PostingState.SENT, actor="serve")
    transition(db, posting.id, PostingState.FAILED, actor="serve", qb_status_code=3140,
               qb_status_message='There is an invalid reference to QuickBooks Account "Travel" in the Bill.')


def alert(db: Store, config: Config, clock: Clock, trigger: str = "pull") -> None:
    result = send_alerts(db, config, now=clock.now, trigger=trigger, environ=ENV)
    assert result.error is None


def audit_rows(db: Store) -> list[dict[str, object]]:
    return [r.detail for r in db.audit.rows(event=AuditEvent.ALERT_SENT)]


# --- the tests ----------------------------------------------------------------------------------------------

def test_a_blocked_report_is_told_once_by_email_and_by_webhook_with_its_fix(
        db: Store, clock: Clock, smtp: SmtpServer, webhook: Webhook) -> None:
    block_bob(db)
    config = config_for(smtp, webhook)
    alert(db, config, clock)

    assert smtp.subjects() == ["ml-connector: 1 report needs you (1 blocked)"]
    mail = smtp.mails[0]
    assert mail["To"] == "controller@example.com" and mail["From"] == "mlconnector@example.com"
    body = mail.get_content()
    assert "- R3 (blocked): report R3, submitter_email: no vendor is mapped to bob@example.com" in body
    assert '  Fix: run mlconnector map set employee bob@example.com "VENDOR NAME"' in body
    assert smtp.logins == [("mlc", SMTP_PASSWORD)]
    assert webhook.posts == [{"text": f"ml-connector: 1 report needs you (1 blocked)\n\n{body.rstrip()}"}]

    clock.advance(hours=3)
    alert(db, config, clock)
    alert(db, config, clock, trigger="serve")
    assert len(smtp.mails) == 1 and len(webhook.posts) == 1


def test_each_digest_sent_is_in_the_audit_log_with_channel_counts_and_keys(
        db: Store, clock: Clock, smtp: SmtpServer, webhook: Webhook) -> None:
    block_bob(db)
    alert(db, config_for(smtp, webhook), clock, trigger="serve")
    rows = db.audit.rows(event=AuditEvent.ALERT_SENT)
    assert [(r.actor, r.detail["channel"]) for r in rows] == [("serve", "email"), ("serve", "webhook")]
    detail = rows[0].detail
    assert detail["counts"] == {"blocked": 1}
    assert detail["subject"] == "ml-connector: 1 report needs you (1 blocked)"
    items = detail["items"]
    assert isinstance(items, list) and len(items) == 1 and items[0].startswith("blocked:R3:")
    assert "body" not in detail


def test_a_new_failure_within_the_hour_waits_and_goes_after_the_hour(
        db: Store, clock: Clock, smtp: SmtpServer, webhook: Webhook) -> None:
    block_bob(db)
    config = config_for(smtp, webhook)
    alert(db, config, clock)
    queue_ann(db, "R2")
    fail(db, "R2")

    clock.advance(minutes=30)
    result = send_alerts(db, config, now=clock.now, trigger="serve", environ=ENV)
    assert result.waiting and not result.sent
    assert len(smtp.mails) == 1 and len(webhook.posts) == 1

    clock.advance(minutes=31)
    alert(db, config, clock, trigger="serve")
    assert smtp.subjects()[-1] == "ml-connector: 1 report needs you (1 failed)"
    body = smtp.mails[-1].get_content()
    assert 'R2 (failed): QuickBooks 3140: There is an invalid reference to QuickBooks Account "Travel"' in body
    assert "Fix: correct it in QuickBooks or in the mappings, then run mlconnector replay R2" in body
    assert "R3" not in body  # told an hour ago
    assert len(webhook.posts) == 2


def test_a_failing_mail_server_is_logged_in_one_line_and_retried_next_time(
        db: Store, clock: Clock, smtp: SmtpServer, webhook: Webhook, records: list[logging.LogRecord]) -> None:
    block_bob(db)
    config = config_for(smtp, webhook)
    smtp.refuse_data = True
    result = send_alerts(db, config, now=clock.now, trigger="pull", environ=ENV)

    assert result.error is None and list(result.failed) == ["email"] and list(result.sent) == ["webhook"]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    line = warnings[0].getMessage()
    assert "alert digest through email not sent (1 item(s) kept for the next try)" in line
    assert "451" in line and "\n" not in line

    smtp.refuse_data = False
    clock.advance(minutes=5)
    alert(db, config, clock)  # too soon after a failure: waits
    assert smtp.mails == []
    clock.advance(minutes=11)
    alert(db, config, clock)
    assert smtp.subjects() == ["ml-connector: 1 report needs you (1 blocked)"]
    assert len(webhook.posts) == 1  # the webhook had told it already


def test_an_unreachable_mail_server_and_a_broken_sender_never_raise(db: Store, clock: Clock) -> None:
    block_bob(db)
    config = config_for(None, None, email_to=("c@example.com",), email_from="m@example.com", smtp_host="127.0.0.1",
                        smtp_port=1, smtp_starttls=False, webhook_url="http://127.0.0.1:1/hook")
    result = send_alerts(db, config, now=clock.now, trigger="pull", environ=ENV)
    assert set(result.failed) == {"email", "webhook"}
    assert "could not reach the mail server 127.0.0.1:1" in result.failed["email"]

    def broken(channel: str, message: Message) -> None:
        raise RuntimeError("a bug")

    clock.advance(hours=1)
    result = send_alerts(db, config, now=clock.now, trigger="serve", send=broken)
    assert result.failed == {"email": "RuntimeError: a bug", "webhook": "RuntimeError: a bug"}


def test_a_second_process_checking_while_a_digest_goes_out_does_not_send_it_again(
        tmp_path: Path, clock: Clock) -> None:
    first, second = Store.open(tmp_path / "state.db", now=clock), Store.open(tmp_path / "state.db", now=clock)
    block_bob(first)
    config = config_for(None, None, webhook_url="http://127.0.0.1:1/x")
    sent: list[str] = []
    meanwhile: list[AlertResult] = []

    def slow(channel: str, message: Message) -> None:
        meanwhile.append(send_alerts(second, config, now=clock.now, trigger="serve", send=slow))
        sent.append(message.subject)

    send_alerts(first, config, now=clock.now, trigger="pull", send=slow)
    assert sent == ["ml-connector: 1 report needs you (1 blocked)"]
    assert meanwhile[0].waiting and not meanwhile[0].sent
    first.close()
    second.close()


def test_an_item_that_goes_away_and_comes_back_is_told_again(
        db: Store, clock: Clock, smtp: SmtpServer) -> None:
    block_bob(db)
    config = config_for(smtp, None)
    alert(db, config, clock)
    set_mapping(db, "employee", "bob@example.com", "Bob Jones", actor="t")
    replay_report(db, Config(), "R3", force=False, today=dt.date(2026, 4, 1), actor="t")  # queued: gone
    clock.advance(hours=2)
    alert(db, config, clock)
    assert len(smtp.mails) == 1
    posting = postings_for_report(db, "R3")[0]
    transition(db, posting.id, PostingState.SENT, actor="serve")
    transition(db, posting.id, PostingState.FAILED, actor="serve", qb_status_code=3100, qb_status_message="name in use")
    clock.advance(hours=2)
    alert(db, config, clock)
    assert smtp.subjects()[-1] == "ml-connector: 1 report needs you (1 failed)"


def test_the_web_connector_silent_for_27_hours_with_work_queued_is_an_item(
        db: Store, clock: Clock, smtp: SmtpServer) -> None:
    queue_ann(db)
    config = config_for(smtp, None)
    db.set_setting("qbwc.last_contact", (clock.now - dt.timedelta(hours=2)).isoformat(timespec="milliseconds"))
    assert collect_items(db, config, now=clock.now) == []

    db.set_setting("qbwc.last_contact", (clock.now - dt.timedelta(hours=27)).isoformat(timespec="milliseconds"))
    alert(db, config, clock, trigger="serve")
    assert smtp.subjects() == ["ml-connector: 1 thing needs you (Web Connector silent)"]
    body = smtp.mails[0].get_content()
    assert ("- Web Connector silent: the Web Connector has not connected for 27 hours "
            "(last at 2026-03-31 06:00 UTC) while 1 posting waits") in body
    assert "Fix: on the QuickBooks computer open QuickBooks with the company file, start the Web Connector" in body


def test_a_web_connector_that_never_connected_is_an_item_once_work_has_waited_long_enough(
        db: Store, clock: Clock) -> None:
    queue_ann(db)  # queued at T0
    config = config_for(None, None, webhook_url="http://127.0.0.1:1/x", silent_after_hours=26)
    assert collect_items(db, config, now=T0 + dt.timedelta(hours=25)) == []
    items = collect_items(db, config, now=T0 + dt.timedelta(hours=27))
    assert [(i.kind, i.key) for i in items] == [(AlertKind.SILENT, "silent:never")]
    assert "has never connected, and work has waited 27 hours while 1 posting waits" in items[0].text


def test_nothing_queued_means_a_silent_web_connector_is_no_item(db: Store, clock: Clock) -> None:
    db.set_setting("qbwc.last_contact", "2026-01-01T00:00:00.000+00:00")
    assert collect_items(db, config_for(None, None), now=clock.now) == []


def test_expensify_failing_on_two_pulls_in_a_row_is_one_item_without_the_secret(db: Store, clock: Clock) -> None:
    config = config_for(None, None, webhook_url="http://127.0.0.1:1/x")
    for error in ("Expensify refused the credentials", f"Expensify refused partnerUserSecret {EXPENSIFY_SECRET}"):
        pull = start_pull(db)
        finish_pull(db, pull, "failed", "{}", error)
    items = collect_items(db, config, now=clock.now)
    assert [i.kind for i in items] == [AlertKind.EXPENSIFY]
    assert items[0].key == "expensify:1"
    assert "the last 2 pulls failed" in items[0].text and EXPENSIFY_SECRET not in items[0].text
    finish_pull(db, start_pull(db), "ok", "{}")
    assert collect_items(db, config, now=clock.now) == []


def test_one_failed_pull_is_no_item(db: Store, clock: Clock) -> None:
    finish_pull(db, start_pull(db), "ok", "{}")
    finish_pull(db, start_pull(db), "failed", "{}", "timeout")
    assert collect_items(db, config_for(None, None), now=clock.now) == []


def test_secrets_reach_neither_the_message_nor_the_log_nor_the_audit_log(
        db: Store, clock: Clock, smtp: SmtpServer, webhook: Webhook, records: list[logging.LogRecord]) -> None:
    block_bob(db)
    for error in ("first", f'{{"partnerUserSecret": "{EXPENSIFY_SECRET}"}} refused; login {SMTP_PASSWORD}'):
        finish_pull(db, start_pull(db), "failed", "{}", error)
    config = config_for(smtp, webhook)
    smtp.password = "another"  # the login fails: the error is logged
    alert(db, config, clock)
    smtp.password = SMTP_PASSWORD
    clock.advance(minutes=20)
    alert(db, config, clock)

    assert len(smtp.mails) == 1 and len(webhook.posts) == 1
    texts = [m.as_string() for m in smtp.mails] + [json.dumps(p) for p in webhook.posts]
    texts += [r.getMessage() for r in records] + [json.dumps(d) for d in audit_rows(db)]
    assert any("refused the login of mlc" in t for t in texts)
    assert any("Expensify failing" in t for t in texts)
    for text in texts:
        for secret in (SMTP_PASSWORD, EXPENSIFY_SECRET, WEBHOOK_TOKEN):
            assert secret not in text


def test_no_channel_configured_does_nothing_not_even_sql(clock: Clock) -> None:
    closed = Store.memory()
    closed.close()  # any query would fail
    result = send_alerts(closed, Config(), now=clock.now, trigger="pull")
    assert result.channels == () and result.error is None and not result.sent


def test_a_store_that_fails_is_logged_not_raised(clock: Clock, records: list[logging.LogRecord]) -> None:
    closed = Store.memory()
    closed.close()
    result = send_alerts(closed, config_for(None, None, webhook_url="http://127.0.0.1:1/x"), now=clock.now,
                         trigger="serve")
    assert result.error == "the state file is busy or read-only: Cannot operate on a closed database."
    assert [r.getMessage().split(":")[0] for r in records] == ["alerts after the serve could not be checked"]


def test_a_digest_counts_every_kind_and_lists_the_first_ten(
        db: Store, clock: Clock, smtp: SmtpServer) -> None:
    for n in range(12):
        block_bob(db, f"R{n:02d}")
    queue_ann(db, "RX")
    fail(db, "RX")
    alert(db, config_for(smtp, None), clock)
    assert smtp.subjects() == ["ml-connector: 13 reports need you (12 blocked, 1 failed)"]
    body = smtp.mails[0].get_content()
    assert body.count("  Fix: ") == 10
    assert "… and 3 more: mlconnector status lists them all." in body
    assert audit_rows(db)[0]["counts"] == {"blocked": 12, "failed": 1}


def test_the_subject_says_things_when_not_every_item_is_a_report() -> None:
    assert subject_line({"blocked": 2, "web_connector_silent": 1}) == (
        "ml-connector: 3 things need you (2 blocked, Web Connector silent)")
    assert subject_line({"blocked": 2, "failed": 1}) == "ml-connector: 3 reports need you (2 blocked, 1 failed)"


def test_the_company_name_from_quickbooks_heads_the_message(db: Store, clock: Clock, smtp: SmtpServer) -> None:
    from mlconnector.store.company import remember_company_file

    remember_company_file(db, {"company_name": "Acme Widgets LLC"})
    block_bob(db)
    alert(db, config_for(smtp, None), clock)
    assert smtp.mails[0].get_content().startswith("ml-connector for Acme Widgets LLC needs a person: 1 blocked.")


def test_a_webhook_that_answers_other_than_2xx_is_not_sent_and_names_the_fix(webhook: Webhook) -> None:
    message = Message("s", "b")
    for status, fix in ((404, "create a new incoming webhook"), (302, "is redirected"), (500, "tries again")):
        webhook.status = status
        with pytest.raises(ChannelError) as caught:
            post_webhook(webhook.url, message)
        assert f"the webhook at 127.0.0.1 answered HTTP {status}" in str(caught.value)
        assert caught.value.hint is not None and fix in caught.value.hint
        assert WEBHOOK_TOKEN not in str(caught.value) + caught.value.hint
    assert webhook.posts == []


def test_email_settings_that_are_missing_are_named_before_connecting() -> None:
    message = Message("s", "b")
    with pytest.raises(ChannelError, match="notify.smtp_host is missing"):
        send_email(NotifyConfig(email_to=("a@example.com",), email_from="m@example.com"), None, message)
    with pytest.raises(ChannelError, match="MLCONNECTOR_SMTP_PASSWORD is not set"):
        send_email(NotifyConfig(email_to=("a@example.com",), email_from="m@example.com", smtp_host="127.0.0.1",
                                smtp_user="mlc"), None, message)


def test_a_server_without_starttls_is_refused_when_starttls_is_asked(smtp: SmtpServer) -> None:
    notify = NotifyConfig(email_to=("a@example.com",), email_from="m@example.com", smtp_host="127.0.0.1",
                          smtp_port=smtp.port, smtp_starttls=True)
    with pytest.raises(ChannelError, match="does not offer what is asked") as caught:
        send_email(notify, None, Message("s", "b"))
    assert caught.value.hint is not None and "STARTTLS missing: use port 465" in caught.value.hint
    assert smtp.mails == []
