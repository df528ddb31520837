"""Failed Web Connector logins: counted in the state file (every thread and a restart see the same
count), and a burst of them locks the user name out for a while."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging

from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

log = logging.getLogger("mlconnector.soap.session")

ACTOR = "serve"


class LoginGuard:
    """Counts failed logins per user name and says when one is locked out.

    Args:
        store: the state file (settings and audit).
        username: the configured user (others share one counter, so guessing names cannot fill the file).
        max_failed: failures within ``window`` that lock the name out ...
        window: ... counted over this span ...
        lockout: ... for this long.
    """

    def __init__(self, store: Store, username: str, *, max_failed: int, window: dt.timedelta,
                 lockout: dt.timedelta) -> None:
        self.store = store
        self.username = username
        self.max_failed = max_failed
        self.window = window
        self.lockout = lockout

    def _failure_key(self, username: str) -> str:
        # Only the configured user gets its own counter; any other name shares one, so that guessing
        # names cannot fill the state file.
        if hmac.compare_digest(username.encode("utf-8"), self.username.encode("utf-8")):
            name = hashlib.sha256(username.encode("utf-8")).hexdigest()[:16]
        else:
            name = "other-users"
        return f"qbwc.login_failures.{name}"

    def _failures(self, username: str) -> list[dt.datetime]:
        raw = self.store.get_setting(self._failure_key(username))
        try:
            return [dt.datetime.fromisoformat(t) for t in json.loads(raw)] if raw else []
        except (ValueError, TypeError):
            return []

    def locked_out(self, username: str, now: dt.datetime) -> bool:
        """Too many recent failures for this name: refuse even a right password for now."""
        limit = self.max_failed
        failures = self._failures(username)
        if len(failures) < limit:
            return False
        # Locked for `lockout` after `limit` failures that fell within `failed_login_window`.
        burst = failures[-limit:]
        return burst[-1] - burst[0] <= self.window and now - burst[-1] < self.lockout

    def refuse(self, username: str, reason: str, now: dt.datetime, *, count: bool) -> None:
        """Audit a refused login; ``count`` it towards the lockout when the credentials were wrong."""
        with self.store.atomic():
            if count:
                horizon = self.lockout + self.window
                keep = [t for t in self._failures(username) if now - t < horizon]
                keep.append(now)
                self.store.set_setting(
                    self._failure_key(username),
                    json.dumps([t.isoformat() for t in keep[-self.max_failed:]]),
                )
            self.store.audit.append(
                AuditEvent.LOGIN_REFUSED, actor=ACTOR, detail={"user": username[:64], "reason": reason}
            )
        log.warning("login refused for %r: %s", username[:64], reason)

    def clear(self, username: str) -> None:
        """A good login: the name's failures are forgotten."""
        self.store.delete_setting(self._failure_key(username))
