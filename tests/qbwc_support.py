"""Helpers for the Web Connector tests: a trivial in-memory Work, a settable clock, login settings."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from mlconnector.passwords import hash_password
from mlconnector.soap.session import SessionSettings

USER = "acme-qbwc"
PASSWORD = "s3cret"  # the password in the Web Connector sample envelopes
COMPANY = r"C:\Users\Public\Documents\Intuit\QuickBooks\Company Files\Acme.QBW"


@functools.lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


def settings(**overrides: object) -> SessionSettings:
    values: dict[str, object] = {"username": USER, "password_hash": password_hash(), "company_file": COMPANY}
    values.update(overrides)
    return SessionSettings(**values)  # type: ignore[arg-type]


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.current = start or dt.datetime(2026, 3, 30, 9, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


@dataclass
class ListWork:
    """The simplest Work: hand out queued qbXML texts one by one; a lost one goes back to the front.

    ``answer`` decides the progress of each response (default: share done, 100 when the queue is empty).
    """

    queue: list[str] = field(default_factory=list)
    in_flight: dict[str, str] = field(default_factory=dict)
    responses: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    late: list[tuple[str, str]] = field(default_factory=list)
    hcp: list[str | None] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    done: int = 0
    raise_in: str = ""

    def _maybe_raise(self, name: str) -> None:
        self.calls.append(name)
        if self.raise_in == name:
            raise RuntimeError(f"boom in {name}")

    def has_work(self) -> bool:
        self._maybe_raise("has_work")
        return bool(self.queue)

    def next_request(self, ticket: str, qbxml_version: str, hcp_response: str | None) -> str | None:
        self._maybe_raise("next_request")
        self.hcp.append(hcp_response)
        self.versions.append(qbxml_version)
        if not self.queue:
            return None
        request = self.queue.pop(0)
        self.in_flight[ticket] = request
        return request

    def _progress(self) -> int:
        if not self.queue:
            return 100
        return min(99, int(100 * self.done / (self.done + len(self.queue))))

    def handle_response(self, ticket: str, response: str) -> int:
        self._maybe_raise("handle_response")
        self.in_flight.pop(ticket, None)
        self.responses.append((ticket, response))
        self.done += 1
        return self._progress()

    def handle_failure(self, ticket: str, hresult: str, message: str) -> int:
        self._maybe_raise("handle_failure")
        self.in_flight.pop(ticket, None)
        self.failures.append((ticket, hresult, message))
        self.done += 1
        return self._progress()

    def on_session_lost(self, ticket: str) -> None:
        self._maybe_raise("on_session_lost")
        self.lost.append(ticket)
        request = self.in_flight.pop(ticket, None)
        if request is not None:
            self.queue.insert(0, request)

    def failure_note(self, ticket: str) -> str | None:
        return None

    def handle_late_response(self, ticket: str, response: str) -> str | None:
        self._maybe_raise("handle_late_response")
        self.late.append((ticket, response))
        return "late answer recorded"

    def summary(self, ticket: str) -> str | None:
        self._maybe_raise("summary")
        return None
