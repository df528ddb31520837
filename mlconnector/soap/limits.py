"""The limits of the connection guard, and a log that an attacker cannot flood."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("mlconnector.soap.server")


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to deliver a request, and how many connections it may hold.

    A request (TLS handshake, headers and body) must be complete ``request_timeout`` seconds after its
    first byte could be read, plus one second for every ``min_body_rate`` bytes of body received so far.
    A trickle is therefore dropped after about ``request_timeout``, while a body keeps earning time as
    long as it averages ``min_body_rate``: a 10 MB receiveResponseXML from a Web Connector on a LAN arrives
    in well under a second, and even a 1 Mbit/s link (~120 KB/s) stays ahead of 64 KiB/s.

    Usage: ``start_in_thread(app, limits=ConnectionLimits(request_timeout=0.5))``.
    """

    request_timeout: float = 5.0
    min_body_rate: float = 64 * 1024  # bytes per second
    per_address: int = 8  # the Web Connector makes one call at a time; IPv6 counts per /64
    max_pending: int = 256  # requests still arriving, all addresses together (Windows select() allows 512)
    max_header_bytes: int = 64 * 1024
    max_buffered_bytes: int = 64 * 1024 * 1024  # bodies held in memory while they arrive, all together


LISTEN_BACKLOG = 128  # cheroot's default of 5 drops SYNs when a burst of connections arrives at once


class LogBudget:
    """Logs at most ``per_window`` lines per ``window`` seconds; an attacker cannot fill the log.

    The lines left out are counted, and the count is logged with the first line of the next window.
    """

    def __init__(self, per_window: int = 20, window: float = 60.0) -> None:
        self._per_window = per_window
        self._window = window
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._count = 0
        self._skipped = 0

    def log(self, level: int, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log one line unless this window's budget is spent."""
        with self._lock:
            now = time.monotonic()
            skipped = 0
            if now - self._start >= self._window:
                skipped, self._skipped, self._count, self._start = self._skipped, 0, 0, now
            if self._count >= self._per_window:
                self._skipped += 1
                return
            self._count += 1
        if skipped:
            log.warning("%d more connection messages in the last %.0f s were not logged", skipped, self._window)
        log.log(level, msg, *args, exc_info=exc_info)


def address_key(address: str | None) -> str:
    """What the per-address cap counts: the IP (IPv4-mapped IPv6 as IPv4), or an IPv6 /64 network."""
    if not address:
        return "local"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip.exploded}/64", strict=False))  # one host holds a whole /64
    return str(ip)
