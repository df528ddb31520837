"""The audit log as people read it: filters from what they type, a bounded listing, the chain check.

``mlconnector audit`` and ``mlconnector audit verify`` call these; rendering stays in the CLI.
Times in the log are UTC, so dates and date-times given without a zone are taken as UTC too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from mlconnector.errors import UserError
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent, AuditRow
from mlconnector.store.messages import message_text

FORMATS = ("table", "json", "csv")

# A log grows by a dozen rows per report; a table of all of them helps nobody and takes seconds to
# draw, so the table shows the newest rows and says so. JSON and CSV are for scripts: everything.
DEFAULT_TABLE_LIMIT = 200


@dataclass(frozen=True)
class AuditListing:
    """The rows to show (oldest first) and how many matched before the limit."""

    rows: list[AuditRow]
    matching: int
    limit: int | None

    @property
    def truncated(self) -> bool:
        """True when older matching rows were left out."""
        return len(self.rows) < self.matching


def parse_since(text: str) -> str:
    """A ``--since`` value as the ISO text audit times compare against.

    Raises:
        UserError: neither YYYY-MM-DD nor an ISO date-time.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value).isoformat()
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"--since {text!r} is not a date", hint="use YYYY-MM-DD or an ISO date-time such as 2026-03-01T09:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds")


def parse_event(text: str, present: list[str]) -> str:
    """An ``--event`` value checked against the known events (and any others the log holds).

    Raises:
        UserError: an event name ml-connector never writes; the message lists the valid ones.
    """
    name = text.strip().lower().replace("-", "_")
    valid = sorted({e.value for e in AuditEvent} | set(present))
    if name not in valid:
        raise UserError(f"unknown event {text!r}", hint="use one of " + ", ".join(valid))
    return name


def parse_format(text: str) -> str:
    """An ``--format`` value.

    Raises:
        UserError: not table, json or csv.
    """
    name = text.strip().lower()
    if name not in FORMATS:
        raise UserError(f"unknown format {text!r}", hint="use --format table, json or csv")
    return name


def effective_limit(fmt: str, limit: int | None, report_id: str | None) -> int | None:
    """The row limit: as given (0 means all); else the table's default, except for one report's timeline.

    Raises:
        UserError: a negative limit.
    """
    if limit is not None:
        if limit < 0:
            raise UserError(f"--limit {limit} is negative", hint="give a number of rows, or 0 for all")
        return limit or None
    return DEFAULT_TABLE_LIMIT if fmt == "table" and report_id is None else None


def list_audit(
    store: Store, *, report_id: str | None, since: str | None, event: str | None, limit: int | None
) -> AuditListing:
    """The newest ``limit`` matching rows (all when None), oldest first, and the number matching."""
    rows = store.audit.rows(report_id=report_id, since=since, event=event, limit=limit)
    matching = len(rows) if limit is None else store.audit.count(report_id=report_id, since=since, event=event)
    return AuditListing(rows, matching, limit)


@dataclass(frozen=True)
class ChainCheck:
    """What ``audit verify`` found."""

    rows: int
    broken: AuditRow | None = None
    rows_removed_before_broken: bool = False
    missing_at_end: int = 0
    messages: int = 0
    altered_message: str | None = None  # e.g. "the answer to qbXML message 12 was changed"

    @property
    def intact(self) -> bool:
        """True when every row matches the chain, none were cut off the end and no stored message changed."""
        return self.broken is None and not self.missing_at_end and self.altered_message is None

    def describe(self) -> str:
        """One sentence for the person at the terminal."""
        if self.broken is not None:
            row = self.broken
            where = f"{row.at[:19].replace('T', ' ')}, event {row.event}" + (
                f", report {row.report_id}" if row.report_id else ""
            )
            what = "rows before it were removed" if self.rows_removed_before_broken else "the audit log was edited"
            return f"row {row.id} ({where}) does not match the chain: {what}"
        if self.missing_at_end:
            return f"the last {self.missing_at_end} row(s) of the audit log were removed"
        if self.altered_message:
            return f"{self.altered_message} after the audit log recorded it"
        return f"audit log intact: {self.rows} rows, {self.messages} stored qbXML message(s) unchanged"


def check_chain(store: Store) -> ChainCheck:
    """Check the hash chain, and that no rows were cut off the end.

    The chain alone cannot show rows deleted from the end; SQLite's AUTOINCREMENT counter can,
    because it remembers the highest id ever written.
    """
    count = store.audit.count()
    broken_id = store.audit.verify()
    if broken_id is not None:
        broken = store.audit.get(broken_id)
        gap = broken_id > 1 and store.audit.get(broken_id - 1) is None
        return ChainCheck(count, broken, rows_removed_before_broken=gap)
    highest, written = store.audit.highest_ids()
    checked, altered = _check_messages(store)
    return ChainCheck(count, missing_at_end=max(0, written - int(highest)), messages=checked, altered_message=altered)


def _check_messages(store: Store) -> tuple[int, str | None]:
    """Each stored qbXML request and answer against the SHA-256 its audit row recorded.

    Returns how many messages were checked and, for the first one that differs, a sentence.
    """
    checked: set[int] = set()
    for event, digest_key, answer in ((AuditEvent.MESSAGE_SENT, "request_sha256", False),
                                      (AuditEvent.MESSAGE_ANSWERED, "response_sha256", True)):
        for entry in store.audit.rows(event=event):
            digest = entry.detail.get(digest_key)
            message_id = entry.detail.get("message")
            if not digest or not isinstance(message_id, int):
                continue
            exists, text = message_text(store, message_id, answer=answer)
            if not exists:
                return len(checked), f"qbXML message {message_id} was removed from the state file"
            if text is None or hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
                return len(checked), f"the {'answer' if answer else 'request'} of qbXML message {message_id} was changed"
            checked.add(message_id)
    return len(checked), None
