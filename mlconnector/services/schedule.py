"""The schedule ``serve`` keeps by itself: pulls at ``[schedule] pull_at`` times and/or every
``pull_every_minutes``, and the alert check on a timer (a silent Web Connector never ends a session, so only a
timer notices it).

A scheduled pull is the same job as ``mlconnector pull`` under the same lock: when a Task Scheduler pull is
running, the scheduled one waits for it a while, then skips and says so in the log and in ``status``.
Each run opens its own connection to the state file (it runs beside the Web Connector's calls).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from mlconnector.config import Config, ScheduleConfig
from mlconnector.errors import LockedError, MlConnectorError
from mlconnector.paths import Paths
from mlconnector.redact import redact_text
from mlconnector.store import Store

log = logging.getLogger("mlconnector.services.schedule")

LAST_PULL_KEY = "schedule.last_pull"  # JSON: at, result (ok, partial, failed, skipped), detail
ALERT_EVERY = dt.timedelta(minutes=5)
LOCK_WAIT_SECONDS = 300.0  # a pull from Task Scheduler may be running: wait this long, then skip


def next_pull_at(schedule: ScheduleConfig, now: dt.datetime, last_run: dt.datetime | None) -> dt.datetime | None:
    """When the next scheduled pull is due (aware, local time), or None when nothing is scheduled.

    ``pull_at`` times are local times of day; ``pull_every_minutes`` counts from the last scheduled run (from
    ``now`` before the first one).
    """
    local = now.astimezone()
    due: list[dt.datetime] = []
    for text in schedule.pull_at:
        hour, minute = (int(part) for part in text.split(":"))
        # Built from the local day and time, then given that day's offset: 06:00 stays 06:00 across DST.
        at = dt.datetime.combine(local.date(), dt.time(hour, minute)).astimezone()
        if last_run is not None and at <= last_run.astimezone() or at <= local - dt.timedelta(minutes=1):
            at = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hour, minute)).astimezone()
        due.append(at)
    if schedule.pull_every_minutes:
        due.append((last_run or local).astimezone() + dt.timedelta(minutes=schedule.pull_every_minutes))
    return min(due) if due else None


def last_scheduled_pull(store: Store) -> dict[str, Any] | None:
    """The last scheduled pull: ``at`` (ISO UTC), ``result`` and ``detail``; None before the first."""
    try:
        data = json.loads(store.get_setting(LAST_PULL_KEY) or "null")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def schedule_status(store: Store, config: Config, now: dt.datetime) -> dict[str, Any]:
    """For ``status``: when the next scheduled pull is due and how the last one ended."""
    last = last_scheduled_pull(store)
    last_at = dt.datetime.fromisoformat(last["at"]) if last and last.get("at") else None
    nxt = next_pull_at(config.schedule, now, last_at)
    return {"next_pull": nxt.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if nxt else None,
            "last_pull": last}


class Scheduler:
    """``serve``'s own timer: scheduled pulls and the alert check. :meth:`tick` does one round (tests call it);
    :meth:`start` runs it in a thread every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, paths: Paths, config: Config, *, client_factory: Callable[[Config], Any] | None = None,
                 now: Callable[[], dt.datetime] | None = None, interval: float = 30.0,
                 lock_wait: float = LOCK_WAIT_SECONDS) -> None:
        self.paths = paths
        self.config = config
        self.client_factory = client_factory or _client
        self.now = now or (lambda: dt.datetime.now(dt.timezone.utc))
        self.interval = interval
        self.lock_wait = lock_wait
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_alert: dt.datetime | None = None
        self.started = self.now()  # "every N minutes" counts from here until the first scheduled pull

    def start(self) -> None:
        """Run :meth:`tick` every ``interval`` seconds in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="mlconnector-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread. A pull under way is abandoned with the process (a killed pull loses nothing)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def alert_soon(self) -> None:
        """Run the alert check at once, in this thread (a session just ended): never inside a Web Connector
        call, where sending mail could hold the Web Connector up."""
        self._last_alert = None
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:  # the timer must outlive any one round; the log has the details
                log.exception("the schedule's round failed; it runs again in %s s", self.interval)

    def tick(self) -> str | None:
        """One round: the alert check when due, and the scheduled pull when due; returns the pull's result."""
        now = self.now()
        store = Store.open(self.paths.state_file)
        try:
            if self._last_alert is None or now - self._last_alert >= ALERT_EVERY:
                self._last_alert = now
                from mlconnector.services.notify import send_alerts

                send_alerts(store, self.config, now=now, trigger="serve")
            last = last_scheduled_pull(store)
            last_at = dt.datetime.fromisoformat(last["at"]) if last and last.get("at") else None
            # Counted from this serve's start until it has run one: a pull at start-up would surprise.
            nxt = next_pull_at(self.config.schedule, now,
                               last_at if last_at is not None and last_at > self.started else self.started)
            if nxt is None or now < nxt:
                return None
            return self._pull(store, now)
        finally:
            store.close()

    def _pull(self, store: Store, now: dt.datetime) -> str:
        from mlconnector.services.pull_job import run_pull_job

        detail: dict[str, Any] = {}
        try:
            with self.client_factory(self.config) as client:
                job = run_pull_job(store, client, self.config, self.paths.lock_file, today=now.astimezone().date(),
                                   lock_timeout=self.lock_wait, actor="schedule")
            counts = job.summary.counts()
            result = job.summary.result
            detail = {"counts": counts, "waiting": job.waiting.get("reports", 0)}
            log.info("scheduled pull %s: %s", result, counts)
        except LockedError as exc:
            result, detail = "skipped", {"why": f"another pull was running ({exc}); the next one is on time"}
            log.warning("scheduled pull skipped: another pull was still running after %.0f s", self.lock_wait)
        except MlConnectorError as exc:
            result, detail = "failed", {"error": redact_text(str(exc)), "hint": exc.hint}
            log.warning("scheduled pull failed: %s", redact_text(str(exc)))
        except Exception as exc:  # recorded all the same, or the due pull would run again every round
            result, detail = "failed", {"error": redact_text(f"unexpected {type(exc).__name__}: {exc}"),
                                        "hint": "details are in the log file"}
            log.exception("scheduled pull failed unexpectedly")
        record = {"at": now.astimezone(dt.timezone.utc).isoformat(timespec="seconds"), "result": result,
                  "detail": detail}
        with store.atomic():
            store.set_setting(LAST_PULL_KEY, json.dumps(record, sort_keys=True))
        return result


def _client(config: Config) -> Any:
    from mlconnector.expensify.client import ExpensifyClient

    user, secret = config.require_expensify_credentials()
    return ExpensifyClient(user, secret, config.expensify.url)
