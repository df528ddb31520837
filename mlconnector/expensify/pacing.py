"""How the client paces itself: retries with jitter, and a limiter for Expensify's two rate windows."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a retriable failure (never auth or validation errors).

    The delay before try ``n + 1`` is ``base_delay * 2**(n - 1)`` capped at ``max_delay``, of which
    the ``jitter`` fraction is random, so that several clients do not retry in step.

    A failed connection (refused, closed, no connection in time) is retried on a short leash: the
    same doubling waits, cut so that together they last at most ``connect_budget`` seconds
    (:meth:`connect_waits`; by default 2 + 4 + 4 s, so 4 tries). Waiting minutes for a network that
    is down only keeps a person at the terminal, or a scheduled task, in silence.
    """

    max_tries: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5
    rate_limited_delay: float = 10.0
    connect_budget: float = 10.0

    def connect_waits(self) -> tuple[float, ...]:
        """The full (unjittered) waits after failed connections: doubling, cut to ``connect_budget`` in all."""
        waits: list[float] = []
        left = self.connect_budget
        for attempt in range(1, self.max_tries):
            full = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1), left)
            if full <= 0 < self.base_delay:
                break
            waits.append(max(full, 0.0))
            left -= full
        return tuple(waits)

    def tries(self, *, connection: bool = False) -> int:
        """How many tries a failure of this kind gets in all (the first one included)."""
        return 1 + len(self.connect_waits()) if connection else self.max_tries

    def delay(self, attempt: int, rand: Callable[[], float] = random.random, *, rate_limited: bool = False,
              connection: bool = False) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based).

        After a 429 the wait is at least ``rate_limited_delay``: a window is full (another process
        may share the credentials), and the shortest window is 10 s, so a quick retry only burns a try.
        After a failed connection the wait is the ``attempt``-th of :meth:`connect_waits`, jittered.
        """
        full = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        if connection:
            waits = self.connect_waits()
            full = waits[min(attempt, len(waits)) - 1] if waits else 0.0
        wait = full * (1 - self.jitter) + full * self.jitter * rand()
        return max(wait, self.rate_limited_delay) if rate_limited else wait


class RateLimiter:
    """Client-side pacing that keeps every window: by default 5 requests per 10 s and 20 per 60 s.

    ``acquire()`` blocks (through the injected ``sleep``) until a request may start without
    exceeding any window, then records it. ``margin`` keeps a little slack for clock differences.
    """

    def __init__(
        self,
        windows: tuple[tuple[int, float], ...] = ((5, 10.0), (20, 60.0)),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        margin: float = 0.05,
    ) -> None:
        self.windows = windows
        self._clock = clock
        self._sleep = sleep
        self._margin = margin
        self._sent: deque[float] = deque(maxlen=max(limit for limit, _ in windows))

    def wait_time(self, now: float) -> float:
        """Seconds until a request may start at ``now`` (0 when it may start at once)."""
        wait = 0.0
        sent = list(self._sent)
        for limit, period in self.windows:
            recent = [t for t in sent if t > now - period]
            if len(recent) >= limit:
                wait = max(wait, recent[-limit] + period - now + self._margin)
        return wait

    def acquire(self) -> None:
        """Wait for a free slot in every window and take it."""
        while True:
            now = self._clock()
            wait = self.wait_time(now)
            if wait <= 0:
                self._sent.append(now)
                return
            self._sleep(wait)
