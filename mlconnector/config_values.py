"""The value parsers of config.toml: each returns the typed value or raises ValueError with the problem."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from mlconnector.redact import Secret

REPORT_STATES = ("OPEN", "SUBMITTED", "APPROVED", "REIMBURSED", "ARCHIVED")


Parser = Callable[[Any], Any]


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {type(value).__name__}")
    return value


def nonempty(value: Any) -> str:
    text = as_text(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def int_range(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}, not {value}")
        return value

    return parse


def choice(*choices: str) -> Parser:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return str(value)

    return parse


def date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value == "":
        return None
    try:
        return dt.date.fromisoformat(as_text(value))
    except ValueError:
        raise ValueError(f"must be a date YYYY-MM-DD, not {value!r}") from None


def url(value: Any) -> str:
    text = nonempty(value)
    if not text.startswith(("https://", "http://")):
        raise ValueError(f"must start with https:// (got {text!r})")
    return text


def optional_url(value: Any) -> str:
    return "" if value == "" else url(value)


def secret_url(value: Any) -> str:
    """An optional URL that carries a token (a webhook): checked like :func:`url`, never echoed in the error."""
    if value == "":
        return ""
    text = nonempty(value)
    if not text.startswith(("https://", "http://")) or any(c.isspace() for c in text):
        raise ValueError("must be a whole https:// address without spaces (the value is not shown: it holds a token)")
    return text


def text_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of text values")
    return tuple(v.strip() for v in value)


def report_states(value: Any) -> tuple[str, ...]:
    states = tuple(s.upper() for s in text_list(value))
    bad = [s for s in states if s not in REPORT_STATES]
    if bad or not states:
        raise ValueError(f"must list states from {', '.join(REPORT_STATES)} (bad: {', '.join(bad) or 'empty'})")
    return states


def secret(value: Any) -> Secret | None:
    text = as_text(value)
    return Secret(text) if text else None


def times_of_day(value: Any) -> tuple[str, ...]:
    """A list of local times of day, each "HH:MM" (24-hour), returned normalised and sorted."""
    items = text_list(value)
    out = []
    for item in items:
        hour, _, minute = item.strip().partition(":")
        if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and 0 <= int(hour) < 24
                and 0 <= int(minute) < 60):
            raise ValueError(f"{item!r} is not a time of day HH:MM")
        out.append(f"{int(hour):02d}:{minute}")
    return tuple(sorted(set(out)))


def email_list(value: Any) -> tuple[str, ...]:
    """A list of e-mail addresses (each with one @ and a dot after it)."""
    items = text_list(value)
    for item in items:
        local, at, domain = item.strip().partition("@")
        if not (local and at and "." in domain):
            raise ValueError(f"{item!r} is not an e-mail address")
    return tuple(i.strip() for i in items)
