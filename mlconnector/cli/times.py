"""Times as people read them: one format everywhere, local time with its zone (``--utc``: UTC).

JSON output keeps ISO 8601 UTC, exactly as stored; only what is printed for people goes through here.
"""

from __future__ import annotations

import datetime as dt

_utc = False  # set by the root command for this run (`--utc`)


def use_utc(flag: bool) -> None:
    """Print times in UTC (``--utc``) instead of local time."""
    global _utc
    _utc = flag


def human(iso: str | None, *, never: str = "never") -> str:
    """``2026-11-29 17:03:12 +01:00`` (local) or ``2026-11-29 16:03:12 UTC``; ``never`` for no time."""
    if not iso:
        return never
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is None:  # stored times are UTC; a bare one is taken as such
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if _utc:
        return f"{moment.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
    local = moment.astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {_offset(local)}"


def _offset(moment: dt.datetime) -> str:
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
