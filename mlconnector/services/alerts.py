"""What needs a person now, as items with stable keys, and the one digest message that tells them.

An item's key stays the same while the problem stays the same (``blocked:R00042:3f2a9c1b0d4e`` changes
when the reason changes), so :mod:`mlconnector.services.notify` tells each item once. Every text passes
through ``redact_text``: no secret reaches a message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from mlconnector.config import Config
from mlconnector.redact import redact_text
from mlconnector.store import Store, dashboard
from mlconnector.store import alerts as alerts_store
from mlconnector.store.company import company_file
from mlconnector.store.ledger import all_duplicates

# How many items a digest lists by name; the others are counted ("and N more").
DIGEST_ITEMS = 10
# Expensify counts as failing when this many pulls in a row failed.
FAILED_PULLS = 2
ITEM_TEXT_LIMIT = 600


class AlertKind(StrEnum):
    """The kinds of item an alert tells, in the order a digest lists them."""

    BLOCKED = "blocked"
    FAILED = "failed"
    CHANGED = "changed_after_posting"
    DUPLICATE = "duplicate"
    EXPENSIFY = "expensify_failing"
    SILENT = "web_connector_silent"


# The kinds that are about one report each: their count is a number of reports.
REPORT_KINDS = (AlertKind.BLOCKED, AlertKind.FAILED, AlertKind.CHANGED, AlertKind.DUPLICATE)
_LABELS = {
    AlertKind.BLOCKED: "blocked", AlertKind.FAILED: "failed", AlertKind.CHANGED: "changed after posting",
    AlertKind.DUPLICATE: "duplicated in QuickBooks", AlertKind.EXPENSIFY: "Expensify failing",
    AlertKind.SILENT: "Web Connector silent",
}


@dataclass(frozen=True)
class AlertItem:
    """One thing a person must act on: what it is, and what to do."""

    kind: AlertKind
    key: str
    subject: str  # the report ID, or the system concerned
    text: str
    fix: str


@dataclass(frozen=True)
class Digest:
    """The message telling a set of items, with what the audit log records about it (no body)."""

    subject: str
    body: str
    counts: dict[str, int]
    keys: tuple[str, ...]

    def webhook_payload(self) -> dict[str, str]:
        """The JSON a Slack or Teams incoming webhook accepts."""
        return {"text": f"{self.subject}\n\n{self.body}"}


def _digest_of(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:12]


def _clean(text: str, limit: int = ITEM_TEXT_LIMIT) -> str:
    text = " ".join(redact_text(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_time(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def collect_items(store: Store, config: Config, *, now: dt.datetime) -> list[AlertItem]:
    """Everything that needs a person now, in digest order (kind, then report)."""
    return [*_posting_items(store), *_changed_items(store), *_duplicate_items(store), *_expensify_items(store),
            *_silent_items(store, now, config.notify.silent_after_hours)]


def _posting_items(store: Store) -> list[AlertItem]:
    """One item per blocked or failed report (its parts together), keyed by what is wrong."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for p in alerts_store.attention_postings(store):
        if p.state == "failed" and p.qb_status_code is not None:
            what = f"QuickBooks {p.qb_status_code}: {p.qb_status_message}"
        else:
            what = p.reason or p.qb_status_message or "no reason recorded"
        lines = grouped.setdefault((p.state, p.report_id), [])
        for line in what.splitlines():
            if line.strip() and line.strip() not in lines:
                lines.append(line.strip())
    items = [_blocked(rid, lines) for (state, rid), lines in grouped.items() if state == "blocked"]
    items += [_failed(rid, lines) for (state, rid), lines in grouped.items() if state == "failed"]
    return items


def _blocked(report_id: str, lines: Sequence[str]) -> AlertItem:
    # A block reads "where: what — fix"; the fix is what the person does (re-planning follows by itself).
    what, _, fix = lines[0].partition(" — ")
    more = f" (and {len(lines) - 1} more problem{'s' if len(lines) > 2 else ''})" if len(lines) > 1 else ""
    return AlertItem(AlertKind.BLOCKED, f"blocked:{report_id}:{_digest_of(*lines)}", report_id,
                     _clean(what) + more, _clean(fix) if fix else f"fix it, then run mlconnector replay {report_id}")


def _failed(report_id: str, lines: Sequence[str]) -> AlertItem:
    return AlertItem(AlertKind.FAILED, f"failed:{report_id}:{_digest_of(*lines)}", report_id, _clean("; ".join(lines)),
                     f"correct it in QuickBooks or in the mappings, then run mlconnector replay {report_id}")


def _changed_items(store: Store) -> list[AlertItem]:
    return [
        AlertItem(AlertKind.CHANGED, f"changed:{rid}", rid,
                  "edited in Expensify after QuickBooks got it; not posted again",
                  f"compare with mlconnector audit --report {rid}, then correct (or void and re-enter) "
                  "the transaction in QuickBooks by hand")
        for rid in dashboard.changed_after_posting(store)
    ]


def _duplicate_items(store: Store) -> list[AlertItem]:
    _, found = all_duplicates(store)
    return [
        AlertItem(AlertKind.DUPLICATE, f"duplicate:{d.report_id}:{d.part}:{','.join(sorted(d.extra_txn_ids))}",
                  d.report_id, _clean(f"QuickBooks holds part {d.part} of {d.part_count} more than once"
                                      if d.part_count > 1 else "QuickBooks holds it more than once"),
                  _clean(d.fix))
        for d in found
    ]


def _expensify_items(store: Store) -> list[AlertItem]:
    """Expensify failing on consecutive pulls: one item per run of failures, keyed by its first pull."""
    streak = []
    for run in alerts_store.recent_pulls(store, 50):
        if run.result != "failed":
            break
        streak.append(run)
    if len(streak) < FAILED_PULLS:
        return []
    first, last = streak[-1], streak[0]
    return [AlertItem(
        AlertKind.EXPENSIFY, f"expensify:{first.id}", "Expensify",
        _clean(f"the last {len(streak)} pulls failed (since {first.started_at[:16].replace('T', ' ')} UTC): "
               f"{last.error or 'no error recorded'}"),
        "run mlconnector check to test the Expensify credentials and expensify.url; the log file has the details")]


def _silent_items(store: Store, now: dt.datetime, hours: int) -> list[AlertItem]:
    """The Web Connector silent longer than ``hours`` while postings wait for it."""
    waiting, since = alerts_store.waiting_for_qbwc(store)
    if not waiting:
        return []
    limit = dt.timedelta(hours=hours)
    last = store.get_setting("qbwc.last_contact")
    if last is not None:
        if now - _parse_time(last) <= limit:
            return []
        silent = f"has not connected for {_hours(now - _parse_time(last))} (last at {last[:16].replace('T', ' ')} UTC)"
    else:
        if since is None or now - _parse_time(since) <= limit:
            return []
        silent = f"has never connected, and work has waited {_hours(now - _parse_time(since))}"
    return [AlertItem(
        AlertKind.SILENT, f"silent:{last or 'never'}", "Web Connector",
        f"the Web Connector {silent} while {waiting} posting{'s wait' if waiting > 1 else ' waits'}",
        "on the QuickBooks computer open QuickBooks with the company file, start the Web Connector and tick "
        "Auto-Run for ml-connector; mlconnector check tests the serve address")]


def _hours(span: dt.timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} hours" if hours < 72 else f"{hours // 24} days"


def company_label(store: Store, config: Config) -> str:
    """The QuickBooks company's name when the Web Connector told it, else the ml-connector home."""
    name = company_file(store).get("company_name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    return str(config.source.parent) if config.source is not None else "ml-connector"


def counts_of(items: Iterable[AlertItem]) -> dict[str, int]:
    """How many items of each kind (kinds absent are left out), in digest order."""
    found = [i.kind for i in items]
    return {kind.value: found.count(kind) for kind in AlertKind if kind in found}


def subject_line(counts: dict[str, int]) -> str:
    """``ml-connector: 3 reports need you (2 blocked, 1 failed)``."""
    total = sum(counts.values())
    noun = "report" if all(AlertKind(k) in REPORT_KINDS for k in counts) else "thing"
    verb = "needs" if total == 1 else "need"
    return f"ml-connector: {total} {noun}{'s' if total != 1 else ''} {verb} you ({_count_words(counts)})"


def build_digest(items: Sequence[AlertItem], *, company: str, now: dt.datetime, trigger: str) -> Digest:
    """The plain-text digest of ``items``: counts per kind, the first ten with their fixes, no secret."""
    counts = counts_of(items)
    lines = [f"ml-connector for {company} needs a person: {_count_words(counts)}.", ""]
    for item in items[:DIGEST_ITEMS]:
        head = f"{item.subject} ({_LABELS[item.kind]})" if item.kind in REPORT_KINDS else _LABELS[item.kind]
        lines += [f"- {head}: {item.text}", f"  Fix: {item.fix}"]
    if len(items) > DIGEST_ITEMS:
        lines.append(f"… and {len(items) - DIGEST_ITEMS} more: mlconnector status lists them all.")
    lines += ["", (f"Checked after the {trigger} at {now.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. "
                   "Each item is told once; mlconnector status shows what still waits.")]
    body = redact_text("\n".join(lines))
    return Digest(redact_text(subject_line(counts)), body, counts, tuple(i.key for i in items))


def _count_words(counts: dict[str, int]) -> str:
    """``2 blocked, 1 failed, Web Connector silent`` (the kinds that are not reports come at most once)."""
    return ", ".join(f"{n} {_LABELS[AlertKind(k)]}" if AlertKind(k) in REPORT_KINDS else _LABELS[AlertKind(k)]
                     for k, n in counts.items())
