"""Which export jobs a pull runs: date windows of at most a year, or, after an earlier pull, "approved after"
that day plus a window from it (see :func:`export_windows`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mlconnector.errors import ConfigError, ConfigProblem, UserError

MAX_WINDOW_DAYS = 365  # Expensify refuses date ranges longer than a year


@dataclass(frozen=True)
class ExportWindow:
    """The filters of one export job (dates inclusive)."""

    start: dt.date | None = None
    end: dt.date | None = None
    approved_after: dt.date | None = None

    def as_dict(self) -> dict[str, str]:
        """JSON view: only the bounds that are set."""
        names = {"start": self.start, "end": self.end, "approved_after": self.approved_after}
        return {k: v.isoformat() for k, v in names.items() if v is not None}


def split_range(start: dt.date, end: dt.date) -> list[ExportWindow]:
    """Cut ``start..end`` (inclusive) into consecutive windows of at most a year."""
    windows = []
    while start <= end:
        stop = min(end, start + dt.timedelta(days=MAX_WINDOW_DAYS - 1))
        windows.append(ExportWindow(start=start, end=stop))
        start = stop + dt.timedelta(days=1)
    return windows


def export_windows(
    *, since: dt.date | None, until: dt.date | None, last_day: dt.date | None, start_date: dt.date | None,
    today: dt.date,
) -> list[ExportWindow]:
    """The export jobs of a pull.

    ``--since``/``--until`` give date windows. Otherwise, after a successful pull less than a year
    ago, two jobs: ``approvedAfter`` the day before it (``startDate`` filters on created/submitted,
    so a report created long ago and approved since would be missed), plus a date window from that
    day (reports closed without an approval step). The first pull, and ``--until`` alone, start at
    ``expensify.start_date``; after more than a year without a pull, date windows from the last one.

    Raises:
        UserError: ``--since`` is after ``--until``.
        ConfigError: there is no start: no ``--since``, no earlier pull and no ``expensify.start_date``.
    """
    end = until or today
    if since is not None:
        if since > end:
            raise UserError(f"--since {since} is after --until {end}")
        return split_range(since, end)
    if until is None and last_day is not None:
        anchor = last_day - dt.timedelta(days=1)
        if (today - anchor).days < MAX_WINDOW_DAYS:
            return [ExportWindow(approved_after=anchor), ExportWindow(start=anchor, end=today)]
        return split_range(anchor, today)  # a long gap: approvedAfter would need an endDate anyway
    start = start_date or last_day
    if start is None:
        raise ConfigError([ConfigProblem("expensify.start_date", "missing for the first pull",
                                         "set it in config.toml, or pass --since YYYY-MM-DD")])
    if start > end:
        raise UserError(f"the pull would start at {start}, after its end {end}", hint="pass --since as well")
    return split_range(start, end)


__all__ = ["MAX_WINDOW_DAYS", "ExportWindow", "export_windows", "split_range"]
