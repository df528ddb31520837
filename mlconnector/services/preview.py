"""What a dry-run pull would do with each new or changed report: post it as which transactions, or block it
(with the reason and the fix). Read-only: planned in memory with the current mappings, nothing stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from mlconnector.config import Config
from mlconnector.models import Report
from mlconnector.plan import plan_report
from mlconnector.services.queue import mappings_for, settings_for
from mlconnector.store import Store


def preview_plans(store: Store, config: Config, reports: Iterable[Report], *, today: dt.date) -> list[dict[str, Any]]:
    """One entry per report: ``outcome`` (post, blocked, nothing), its transactions, or its blocks."""
    settings, mappings = settings_for(config), mappings_for(store, config)
    out = []
    for report in reports:
        plan = plan_report(report, mappings, settings, posting_day=today)
        outcome = "blocked" if plan.blocked else "post" if plan.postings else "nothing"
        out.append({
            "report_id": report.report_id, "name": report.name, "total": str(report.total), "outcome": outcome,
            "transactions": [{"mode": p.mode.value, "ref_number": p.ref_number, "total": str(p.total)}
                             for p in plan.postings],
            "blocked": [{"expense_id": b.expense_id, "field": b.field, "reason": b.reason, "fix": b.fix}
                        for b in plan.blocked],
            "notes": [n.reason for n in plan.notes],
        })
    return out
