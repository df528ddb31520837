from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlconnector.config import Config, Secret, load_config, parse_config, write_config
from mlconnector.errors import ConfigError
from mlconnector.models import NonReimbursablePolicy, ReimbursableMode

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"expensify": {"url": "ftp://x"}}, "expensify.url", "https://"),
        ({"expensify": {"report_states": ["APPROVED", "PAID"]}}, "expensify.report_states", "PAID"),
        ({"expensify": {"start_date": "01/02/2026"}}, "expensify.start_date", "YYYY-MM-DD"),
        ({"expensify": {"mark_exported": "yes"}}, "expensify.mark_exported", "true or false"),
        ({"expensify": {"policy_ids": [1, 2]}}, "expensify.policy_ids", "list of text"),
        ({"expensify": {"export_label": " "}}, "expensify.export_label", "empty"),
        ({"expensify": {"partner_user_id": 5}}, "expensify.partner_user_id", "text"),
        ({"expensify": {"colour": "red"}}, "expensify.colour", "unknown key"),
        ({"quickbooks": {"mode": "cheque"}}, "quickbooks.mode", "bill, check, journal"),
        ({"quickbooks": {"txn_date": "today"}}, "quickbooks.txn_date", "last_expense"),
        ({"quickbooks": {"qbxml_version": "15.0"}}, "quickbooks.qbxml_version", "13.0"),
        ({"quickbooks": {"max_lines_per_txn": 0}}, "quickbooks.max_lines_per_txn", "from 1"),
        ({"quickbooks": {"max_lines_per_message": "many"}}, "quickbooks.max_lines_per_message", "whole number"),
        ({"quickbooks": {"max_lines_per_txn": 300, "max_lines_per_message": 100}},
         "quickbooks.max_lines_per_message", "smaller than max_lines_per_txn"),
        ({"quickbooks": {"non_reimbursable": "journal"}}, "quickbooks.card_account", "missing"),
        ({"quickbooks": {"class_tag_level": True}}, "quickbooks.class_tag_level", "whole number"),
        ({"quickbooks": {"ap_account": ""}}, "quickbooks.ap_account", "empty"),
        ({"qbwc": {"port": 70000}}, "qbwc.port", "65535"),
        ({"qbwc": {"public_url": "qb.example.com"}}, "qbwc.public_url", "https://"),
        ({"qbwc": {"run_every_minutes": 0}}, "qbwc.run_every_minutes", "from 1"),
        ({"qbwc": {"username": ""}}, "qbwc.username", "empty"),
        ({"qbwc": "oops"}, "qbwc", "[section]"),
        ({"extra": {}}, "extra", "unknown section"),
    ],
)
def test_each_config_problem_names_its_key_and_the_fix(data: dict[str, Any], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ={})
    problems = {p.path: p for p in info.value.problems}
    assert path in problems, info.value.problems
    assert words in str(problems[path])
    assert problems[path].fix


def test_all_problems_are_collected_not_just_the_first() -> None:
    data = {"expensify": {"url": "x"}, "quickbooks": {"mode": "x"}, "qbwc": {"port": -1}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, environ={})
    assert [p.path for p in info.value.problems] == ["expensify.url", "quickbooks.mode", "qbwc.port"]
    assert "and 2 more problems" in str(info.value)


def test_missing_secret_names_the_key_the_variable_and_init() -> None:
    config = parse_config({"expensify": {"partner_user_id": "aa_x"}}, environ={})
    with pytest.raises(ConfigError) as info:
        config.require_expensify_credentials()
    assert str(info.value) == (
        "expensify.partner_user_secret: missing (set MLCONNECTOR_EXPENSIFY_SECRET or run mlconnector init)"
    )


def test_environment_secret_overrides_the_file_and_never_shows_in_repr() -> None:
    config = parse_config(
        {"expensify": {"partner_user_id": "aa_x", "partner_user_secret": "from-file"}},
        environ={"MLCONNECTOR_EXPENSIFY_SECRET": "from-env-123"},
    )
    user, secret = config.require_expensify_credentials()
    assert (user, secret.reveal()) == ("aa_x", "from-env-123")
    assert "from-env-123" not in repr(config)
    assert "from-env-123" not in f"{secret}"


def test_defaults_fill_every_key() -> None:
    config = parse_config({}, environ={})
    assert config.expensify.report_states == ("APPROVED", "REIMBURSED", "ARCHIVED")
    assert config.quickbooks.mode is ReimbursableMode.BILL
    assert config.qbwc.host == "127.0.0.1"


def test_missing_file_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", environ={})
    assert "not found" in str(info.value) and "mlconnector init" in str(info.value)


def test_half_written_config_is_a_clear_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[expensify]\npartner_user_id = "aa_x\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "is not valid TOML" in str(info.value) and "line 2" in str(info.value)


def test_write_then_load_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    original = parse_config(
        {
            "expensify": {"partner_user_id": "aa_x", "partner_user_secret": "s3cret", "start_date": "2026-01-01"},
            "quickbooks": {"mode": "journal", "non_reimbursable": "journal", "card_account": "Amex"},
        },
        environ={},
    )
    write_config(path, original)
    loaded = load_config(path, environ={})
    assert loaded.expensify == original.expensify
    assert loaded.quickbooks.non_reimbursable is NonReimbursablePolicy.JOURNAL
    assert loaded.expensify.start_date == dt.date(2026, 1, 1)
    if hasattr(path, "stat"):
        assert path.stat().st_mode & 0o077 == 0
    assert not list(path.parent.glob(".config-*"))


def test_example_config_loads_and_shows_every_key() -> None:
    example = REPO / "examples" / "config.toml"
    config = load_config(example, environ={})
    assert isinstance(config, Config)
    text = example.read_text()
    from mlconnector.config import _SECTIONS

    for section, (_, spec) in _SECTIONS.items():
        for key in spec:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key} missing from the example"


def test_secret_equality_and_hash() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert len({Secret("a"), Secret("a")}) == 1


def test_schedule_and_notify_sections_are_checked_and_normalised() -> None:
    config = parse_config({"schedule": {"pull_at": ["6:00", "13:30", "06:00"], "pull_every_minutes": 60},
                           "notify": {"email_to": ["controller@example.com"], "webhook_url": "https://hooks.example.com/x"}},
                          environ={})
    assert config.schedule.pull_at == ("06:00", "13:30") and config.schedule.pull_every_minutes == 60
    assert config.notify.email_to == ("controller@example.com",) and config.notify.smtp_port == 587
    with pytest.raises(ConfigError) as caught:
        parse_config({"schedule": {"pull_at": ["25:00"]}, "notify": {"email_to": ["nobody"]}}, environ={})
    assert [p.path for p in caught.value.problems] == ["schedule.pull_at", "notify.email_to"]


def test_the_file_init_writes_has_every_key_of_every_section_and_reads_back_the_same() -> None:
    from mlconnector.config import _SECTIONS, config_to_toml

    config = parse_config({"expensify": {"start_date": "2026-01-01"}}, environ={"MLCONNECTOR_EXPENSIFY_SECRET": "s3"})
    document = config_to_toml(config)
    assert {name: set(keys) for name, keys in document.items()} == {name: set(spec) for name, (_, spec) in _SECTIONS.items()}
    assert parse_config(document, environ={}) == dataclasses.replace(config, source=None)
    assert "partner_user_secret" not in config_to_toml(config, include_secret=False)["expensify"]
