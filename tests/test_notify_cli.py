"""``mlconnector notify test`` over the CLI: both channels up, one down, none configured."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from typer.testing import CliRunner

from mlconnector.cli import app

from .test_notify import (
    SMTP_PASSWORD,
    WEBHOOK_TOKEN,
    SmtpServer,
    Webhook,
    smtp,
    webhook,
)

__all__ = ["smtp", "webhook"]  # the loopback servers' fixtures

ENV = {"MLCONNECTOR_SMTP_PASSWORD": SMTP_PASSWORD}


def set_notify(home: Path, **notify: Any) -> None:
    path = home / "config.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["notify"] = {**data.get("notify", {}), **notify}
    path.write_text(tomli_w.dumps(data), encoding="utf-8")


def both(home: Path, smtp: SmtpServer, webhook: Webhook) -> None:
    set_notify(home, email_to=["controller@example.com"], email_from="mlconnector@example.com",
               smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_user="mlc", smtp_starttls=False,
               webhook_url=webhook.url)


def test_notify_test_sends_through_both_channels_and_says_so(
        cli: CliRunner, home: Path, smtp: SmtpServer, webhook: Webhook) -> None:
    both(home, smtp, webhook)
    result = cli.invoke(app, ["notify", "test"], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"✓ email: sent to controller@example.com through 127.0.0.1:{smtp.port}",
        "✓ webhook: posted to the webhook at 127.0.0.1",
    ]
    assert smtp.subjects() == ["ml-connector: test alert"]
    assert f"This is a test from ml-connector for {home}" in smtp.mails[0].get_content()
    assert webhook.posts[0]["text"].startswith("ml-connector: test alert\n\nThis is a test from ml-connector")


def test_notify_test_exits_1_and_names_the_fix_when_the_webhook_is_down(
        cli: CliRunner, home: Path, smtp: SmtpServer, webhook: Webhook) -> None:
    both(home, smtp, webhook)
    webhook.status = 404
    result = cli.invoke(app, ["notify", "test"], env=ENV)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"✓ email: sent to controller@example.com through 127.0.0.1:{smtp.port}",
        ("✗ webhook: the webhook at 127.0.0.1 answered HTTP 404 — the webhook URL is wrong or was removed: "
         "create a new incoming webhook and set notify.webhook_url"),
    ]
    assert WEBHOOK_TOKEN not in result.output


def test_notify_test_exits_1_naming_the_password_variable_when_it_is_not_set(
        cli: CliRunner, home: Path, smtp: SmtpServer, webhook: Webhook) -> None:
    both(home, smtp, webhook)
    result = cli.invoke(app, ["notify", "test", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["failed"] == 1 and data["exit_code"] == 1
    assert data["channels"][0] == {
        "channel": "email", "sent": False, "detail": "MLCONNECTOR_SMTP_PASSWORD is not set",
        "fix": "set it for the account that runs ml-connector (the password of mlc)"}
    assert data["channels"][1]["sent"] is True
    assert smtp.mails == [] and len(webhook.posts) == 1


def test_notify_test_never_shows_the_smtp_password_or_the_webhook_token(
        cli: CliRunner, home: Path, smtp: SmtpServer, webhook: Webhook) -> None:
    both(home, smtp, webhook)
    smtp.password = "not-this-one"
    result = cli.invoke(app, ["notify", "test", "--json"], env=ENV)
    assert result.exit_code == 1
    assert "refused the login of mlc" in result.output
    log = (home / "logs" / "mlconnector.log").read_text(encoding="utf-8")
    for text in (result.output, log):
        assert SMTP_PASSWORD not in text and WEBHOOK_TOKEN not in text


def test_notify_test_exits_1_and_names_the_keys_when_no_channel_is_configured(cli: CliRunner) -> None:
    result = cli.invoke(app, ["notify", "test"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: notify: no alert channel is configured (set notify.email_to, notify.email_from and notify.smtp_host "
        "(and notify.smtp_user with MLCONNECTOR_SMTP_PASSWORD when the server needs a login), or notify.webhook_url,"
        " in config.toml)\n")
