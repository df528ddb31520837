"""Shared pieces for tests that talk to the Expensify simulator over loopback HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlconnector.config import Config, ExpensifyConfig, Secret
from mlconnector.expensify.client import ExpensifyClient, RateLimiter, RetryPolicy
from mlconnector.sandbox.expensify import ExpensifySimulator


class FakeClock:
    """Time that moves only when someone sleeps: shared by the client and the simulator."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.slept: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += max(0.0, seconds)


def make_client(sim: ExpensifySimulator, clock: FakeClock, **overrides: Any) -> ExpensifyClient:
    """A client on the simulator whose every wait goes through the fake clock."""
    options: dict[str, Any] = {
        "limiter": RateLimiter(clock=clock, sleep=clock.sleep),
        "retry": RetryPolicy(max_tries=4, base_delay=1.0),
        "sleep": clock.sleep, "clock": clock, "rand": lambda: 0.5,
        "max_polls": 6, "poll_delay": 1.0,
    }
    options.update(overrides)
    return ExpensifyClient(sim.partner_user_id, sim.partner_user_secret, sim.url, **options)


def make_config(sim: ExpensifySimulator, **expensify: Any) -> Config:
    import datetime as dt

    values: dict[str, Any] = {
        "partner_user_id": sim.partner_user_id, "partner_user_secret": Secret(sim.partner_user_secret),
        "url": sim.url, "start_date": dt.date(2026, 1, 1),
    }
    values.update(expensify)
    return Config(expensify=ExpensifyConfig(**values))


@contextmanager
def running(*args: Any, **kwargs: Any) -> Iterator[ExpensifySimulator]:
    with ExpensifySimulator(*args, **kwargs) as sim:
        yield sim
