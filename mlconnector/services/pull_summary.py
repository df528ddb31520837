"""What one pull did, by report ID: the result ``pull`` prints and ``pull --json`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlconnector.expensify.parse import InvalidReport
from mlconnector.models import Report
from mlconnector.services.pull_windows import ExportWindow
from mlconnector.store.reports import SaveOutcome


@dataclass
class PullSummary:
    """What one pull did, by report ID. ``invalid`` carries each reason."""

    dry_run: bool = False
    pull_id: int | None = None
    windows: list[ExportWindow] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    changed_after_posting: list[str] = field(default_factory=list)
    invalid: list[InvalidReport] = field(default_factory=list)
    stamped: list[str] = field(default_factory=list)
    stamp_error: str | None = None
    watched: list[str] = field(default_factory=list)  # posted reports read again (reimbursement, edits)
    reimbursed: list[str] = field(default_factory=list)  # of those, the ones Expensify now shows reimbursed
    not_found: list[str] = field(default_factory=list)  # asked for with --report, but Expensify exported none
    # A dry run's reports as Expensify sent them (not stored), so the caller can show what would be planned.
    previewed: list[Report] = field(default_factory=list, repr=False)

    @property
    def stored_report_ids(self) -> list[str]:
        """Reports stored new or changed in this pull: the ones to (re)plan."""
        return [*self.new, *self.changed]

    @property
    def result(self) -> str:
        """``ok``, or ``partial`` when some reports were invalid."""
        return "partial" if self.invalid else "ok"

    def counts(self) -> dict[str, int]:
        """How many reports fell in each group."""
        return {
            "new": len(self.new), "unchanged": len(self.unchanged), "changed": len(self.changed),
            "changed_after_posting": len(self.changed_after_posting), "invalid": len(self.invalid),
            "stamped": len(self.stamped), "watched": len(self.watched), "reimbursed": len(self.reimbursed),
            "not_found": len(self.not_found),
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of ``pull --json`` (keys are only ever added)."""
        return {
            "result": self.result, "dry_run": self.dry_run, "pull_id": self.pull_id,
            "windows": [w.as_dict() for w in self.windows], "counts": self.counts(),
            "new": self.new, "unchanged": self.unchanged, "changed": self.changed,
            "changed_after_posting": self.changed_after_posting,
            "invalid": [{"report_id": i.report_id, "reason": i.reason} for i in self.invalid],
            "stamped": self.stamped, "stamp_error": self.stamp_error, "watched": self.watched,
            "reimbursed": self.reimbursed, "not_found": self.not_found,
        }

    def _record(self, outcome: SaveOutcome, report_id: str) -> None:
        {
            SaveOutcome.NEW: self.new, SaveOutcome.UNCHANGED: self.unchanged, SaveOutcome.CHANGED: self.changed,
            SaveOutcome.CHANGED_AFTER_POSTING: self.changed_after_posting,
        }[outcome].append(report_id)
