"""Rich renderables for ``pull`` and ``map refresh``, built from their JSON-shaped summaries."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

_GROUPS = (
    ("new", "New"),
    ("unchanged", "Unchanged"),
    ("changed", "Changed (will be planned again)"),
    ("changed_after_posting", "Changed after posting (not posted again; check QuickBooks)"),
    ("invalid", "Invalid"),
    ("stamped", "Stamped as exported in Expensify"),
    ("watched", "Posted, read again (watch_days)"),
    ("reimbursed", "Reimbursed since posting"),
    ("not_found", "Asked for but not found in Expensify"),
)


def pull_summary_view(summary: dict[str, Any]) -> RenderableType:
    """The counts per group, then every invalid report with its reason and every late change."""
    title = "Pull (dry run: nothing stored)" if summary["dry_run"] else "Pull"
    table = Table(title=title, title_justify="left")
    table.add_column("Reports")
    table.add_column("Count", justify="right")
    for key, label in _GROUPS:
        table.add_row(label, str(summary["counts"].get(key, 0)))
    parts: list[RenderableType] = [table]
    if summary["invalid"]:
        invalid = Table(title="Invalid reports (not stored)", title_justify="left")
        invalid.add_column("Report")
        invalid.add_column("Reason")
        for item in summary["invalid"]:
            invalid.add_row(item["report_id"] or "(no ID)", item["reason"])
        parts.append(invalid)
    if summary["changed_after_posting"]:
        parts.append(Text("Changed after posting: " + ", ".join(summary["changed_after_posting"]), style="yellow"))
    if summary.get("stamp_error"):
        parts.append(Text(f"Stamping failed (will be retried): {summary['stamp_error']}", style="yellow"))
    if summary.get("plan"):
        parts.append(plan_view(summary["plan"]))
    if summary.get("preview"):
        parts.append(preview_view(summary["preview"]))
    if summary.get("payments_queued"):
        parts.append(Text(f"Bill payments queued for QuickBooks: {len(summary['payments_queued'])} reimbursed "
                          f"report(s) ({', '.join(summary['payments_queued'][:10])}"
                          f"{', …' if len(summary['payments_queued']) > 10 else ''})"))
    if summary.get("waiting"):
        parts.extend(waiting_view(summary["waiting"], dry_run=summary["dry_run"]))
    return Group(*parts)


def waiting_view(waiting: dict[str, Any], *, dry_run: bool = False) -> list[RenderableType]:
    """One line with how many reports wait for a person in the whole state file (none: nothing)."""
    if not waiting["postings"]:
        return []
    line = (f"Waiting for a person: {waiting['reports']} report(s) in all ({waiting['blocked']} blocked,"
            f" {waiting['failed']} failed posting(s)); {waiting['hint']}")
    if dry_run:
        line += " (a dry run does not exit 4 for them)"
    return [Text(line, style="yellow")]


def plan_view(plan: dict[str, Any]) -> RenderableType:
    """What planning did: reports queued for QuickBooks, and each blocked report with its reason and fix."""
    lines: list[RenderableType] = [
        Text(f"Queued for QuickBooks: {len(plan['queued'])} report(s), {plan['postings_queued']} transaction(s)")
    ]
    if plan["blocked"]:
        blocked = Table(title="Blocked: fix each as it says (a mapping change plans them again by itself; after any "
                              "other fix run mlconnector replay REPORT_ID)", title_justify="left")
        for column in ("Report", "Expense", "Reason", "Fix"):
            blocked.add_column(column)
        for block in plan["blocked"]:
            blocked.add_row(block["report_id"], block["expense_id"] or "", block["reason"], block["fix"] or "")
        lines.append(blocked)
    for note in plan["notes"]:
        lines.append(Text(f"Note: report {note['report_id']}: {note['reason']}", style="dim"))
    return Group(*lines)


def preview_view(preview: list[dict[str, Any]]) -> RenderableType:
    """A dry run: what each new or changed report would become with today's mappings (nothing was stored)."""
    table = Table(title="Would be planned as (dry run: nothing stored)", title_justify="left")
    for column in ("Report", "Total", "Outcome", "Transactions, or why not and the fix"):
        table.add_column(column, justify="right" if column == "Total" else "left")
    for item in preview:
        if item["outcome"] == "post":
            what = "; ".join(f"{t['mode'].replace('_', ' ')} {t['ref_number']} {t['total']}" for t in item["transactions"])
            outcome = "would post"
        elif item["outcome"] == "blocked":
            what = "; ".join(f"{b['reason']} — {b['fix']}" if b["fix"] else b["reason"] for b in item["blocked"])
            outcome = "would be blocked"
        else:
            what, outcome = "; ".join(item["notes"]) or "nothing to post", "nothing to post"
        table.add_row(item["report_id"], item["total"], outcome, Text(what))
    return table


def lists_view(summary: dict[str, Any]) -> RenderableType:
    """How many categories, tags and employees each policy has now."""
    table = Table(title="Expensify lists", title_justify="left")
    for column in ("Policy", "Categories", "Tags", "Employees"):
        table.add_column(column, justify="left" if column == "Policy" else "right")
    for policy_id, counts in summary["policies"].items():
        table.add_row(policy_id, str(counts["category"]), str(counts["tag"]), str(counts["employee"]))
    if not summary["policies"]:
        return Text("No policies found for these credentials.")
    return table
