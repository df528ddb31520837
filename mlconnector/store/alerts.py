"""The queries behind alerts: what needs a person, what each channel was told already, and when it may speak.

``alerts_sent`` holds one row per (channel, item key) told; rows of items that went away are dropped, so
an item that comes back later is told again. ``alert_channels`` holds each channel's hourly gate and its
last error (redacted by the caller).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from mlconnector.store.db import Store

# The postings that wait for the Web Connector: queued, or sent and not yet answered.
WAITING_FOR_QBWC = ("queued", "sent", "in_doubt")


@dataclass(frozen=True)
class ChannelState:
    """When a channel last tried and sent a digest, and when it may send the next one."""

    channel: str
    last_attempt_at: str | None
    last_sent_at: str | None
    next_at: str
    last_error: str | None


@dataclass(frozen=True)
class AttentionPosting:
    """A blocked or failed posting, with what QuickBooks or the planner said."""

    report_id: str
    part: int
    state: str
    reason: str
    qb_status_code: int | None
    qb_status_message: str


@dataclass(frozen=True)
class PullRun:
    """A finished pull run."""

    id: int
    started_at: str
    result: str
    error: str


def channel_states(store: Store) -> dict[str, ChannelState]:
    """Every channel that ever tried to send, by name."""
    rows = store.conn.execute(
        "SELECT channel, last_attempt_at, last_sent_at, next_at, last_error FROM alert_channels")
    return {str(r[0]): ChannelState(str(r[0]), r[1], r[2], str(r[3]), r[4]) for r in rows}


def hold(store: Store, channel: str, until: str) -> None:
    """Keep the channel from sending before ``until`` (claimed by a run about to send, or released by one that
    found nothing new): another process checking meanwhile does not send the same digest."""
    store.conn.execute(
        "INSERT INTO alert_channels (channel, next_at) VALUES (?, ?)"
        " ON CONFLICT(channel) DO UPDATE SET next_at = excluded.next_at", (channel, until))


def record_attempt(store: Store, channel: str, *, at: str, next_at: str, error: str | None) -> None:
    """Remember a digest attempt: sent (``error`` None) or failed, and when the channel may try again."""
    store.conn.execute(
        "INSERT INTO alert_channels (channel, last_attempt_at, last_sent_at, next_at, last_error)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(channel) DO UPDATE SET last_attempt_at = excluded.last_attempt_at,"
        " last_sent_at = COALESCE(excluded.last_sent_at, alert_channels.last_sent_at),"
        " next_at = excluded.next_at, last_error = excluded.last_error",
        (channel, at, at if error is None else None, next_at, error),
    )


def sent_keys(store: Store, channel: str) -> set[str]:
    """The item keys this channel has told already."""
    return {str(r[0]) for r in store.conn.execute("SELECT item_key FROM alerts_sent WHERE channel = ?", (channel,))}


def mark_sent(store: Store, channel: str, keys: Iterable[str], at: str) -> None:
    """These items were told through this channel."""
    store.conn.executemany(
        "INSERT INTO alerts_sent (channel, item_key, sent_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(channel, key, at) for key in keys])


def forget_gone(store: Store, current: Collection[str]) -> int:
    """Drop the rows of items that no longer need a person (told again if they come back); returns how many."""
    gone = [(key,) for (key,) in store.conn.execute("SELECT DISTINCT item_key FROM alerts_sent")
            if key not in current]
    store.conn.executemany("DELETE FROM alerts_sent WHERE item_key = ?", gone)
    return len(gone)


def attention_postings(store: Store) -> list[AttentionPosting]:
    """Every blocked and failed posting, by report and part."""
    return [
        AttentionPosting(str(r[0]), int(r[1]), str(r[2]), r[3] or "", r[4], r[5] or "")
        for r in store.conn.execute(
            "SELECT report_id, part, state, reason, qb_status_code, qb_status_message FROM postings"
            " WHERE state IN ('blocked', 'failed') ORDER BY report_id, part")
    ]


def recent_pulls(store: Store, limit: int) -> list[PullRun]:
    """The newest ``limit`` finished pulls, newest first (a pull still running, or killed, has no result)."""
    return [
        PullRun(int(r[0]), str(r[1]), str(r[2]), r[3] or "")
        for r in store.conn.execute(
            "SELECT id, started_at, result, error FROM pulls WHERE result IS NOT NULL ORDER BY id DESC LIMIT ?",
            (limit,))
    ]


def waiting_for_qbwc(store: Store) -> tuple[int, str | None]:
    """How many postings wait for the Web Connector, and since when the oldest has waited."""
    marks = ",".join("?" for _ in WAITING_FOR_QBWC)
    row = store.conn.execute(
        f"SELECT COUNT(*), MIN(updated_at) FROM postings WHERE state IN ({marks})", WAITING_FOR_QBWC).fetchone()
    return int(row[0]), (str(row[1]) if row[1] is not None else None)
