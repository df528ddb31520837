"""Rich renderables built from plain data; nothing here reads state or prints."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from mlconnector.cli.times import human


def status_view(report: dict[str, Any]) -> RenderableType:
    """The ``status`` screen: config, state file and a table of posting counts."""
    config, state = report["config"], report["state"]
    lines = []
    home = report.get("home") or {}
    if home and not home.get("exists"):
        # Nothing to count: say so instead of a table of zeros that looks like an empty installation.
        return Text(f"No ml-connector home at {home['path']} (a mistyped --home or MLCONNECTOR_HOME?); "
                    "run mlconnector init to create one there.", style="yellow")
    if not config["found"]:
        lines.append(Text(f"Config: not found at {config['path']} (run mlconnector init)", style="yellow"))
    elif config["problems"]:
        lines.append(Text(f"Config: {config['path']} has problems:", style="red"))
        lines.extend(Text(f"  {p}") for p in config["problems"])
    else:
        creds = "set" if config.get("expensify_credentials") else "not set"
        lines.append(Text(f"Config: {config['path']} (mode {config.get('mode')}, Expensify credentials {creds})"))
    if state["exists"]:
        lines.append(Text(f"State file: {state['path']} (schema {state.get('schema_version')})"))
    else:
        lines.append(Text(f"State file: not created yet at {state['path']} (run mlconnector init)", style="yellow"))
    last = report.get("last_pull")
    if last:
        when = last["finished_at"] or last["started_at"]
        lines.append(Text(f"Last pull: {last['result'] or 'running'} at {human(when)}"
                          + (f" ({last['error']})" if last.get("error") else "")))
    if report.get("changed_after_posting"):
        lines.append(Text("Changed in Expensify after posting (check QuickBooks by hand): "
                          + ", ".join(report["changed_after_posting"]), style="yellow"))
    lines.append(_web_connector_line(report))
    for channel in report.get("alerts") or []:
        if channel.get("last_error"):
            lines.append(Text(f"Alerts by {channel['channel']} are failing (last try {human(channel['last_attempt_at'])}):"
                              f" {channel['last_error']} — mlconnector notify test shows the fix", style="yellow"))
    schedule = report.get("schedule") or {}
    if schedule.get("next_pull") or schedule.get("last_pull"):
        last = schedule.get("last_pull") or {}
        text = f"Schedule: next pull {human(schedule.get('next_pull'), never='not scheduled')}"
        if last:
            text += f"; last scheduled pull {last.get('result')} at {human(last.get('at'))}"
        lines.append(Text(text))
    if report.get("quickbooks_company"):
        lines.append(_company_line(report["quickbooks_company"]))
    payments = report.get("bill_payments") or {}
    show_payments = any(payments.values())
    table = Table(title="Postings", title_justify="left")
    table.add_column("State")
    table.add_column("Count", justify="right")
    if show_payments:
        table.add_column("of which bill payments", justify="right")
    for name, count in report["postings"].items():
        table.add_row(name, str(count), *([str(payments.get(name, 0))] if show_payments else []))
    parts: list[RenderableType] = [*lines, table]
    if payments.get("paid_by_hand"):
        parts.append(Text(f"Bills found paid in QuickBooks by hand (no payment posted): {payments['paid_by_hand']}"
                          " report(s) (mlconnector audit --event paid_in_quickbooks)"))
    reports = report.get("reports")
    if reports:
        parts.append(Text(f"Reports queued: {reports['queued']}, blocked: {reports['blocked']}"))
    reasons = report.get("blocked_reasons") or []
    if reasons:
        why = Table(title="Why reports are blocked", title_justify="left")
        why.add_column("Reports", justify="right")
        why.add_column("Reason and fix", overflow="fold")
        for item in reasons:
            why.add_row(str(item["reports"]), Text(item["reason"]))
        parts.append(why)
    parts.extend(_attention_tables(report))
    return Group(*parts)


def _web_connector_line(report: dict[str, Any]) -> Text:
    contact, session = report.get("last_qbwc_contact"), report.get("qbwc_session")
    if not contact and not session:
        return Text("Web Connector: no contact yet (mlconnector qwc writes the file to add in the Web Connector)",
                    style="yellow")
    text = f"Web Connector: last login {_when(contact)}"
    if session:
        text += f"; newest session {session['state']}, last call {_when(session['last_seen_at'])}"
        if session.get("busy_until"):
            text += (f"; a request is inside QuickBooks, so a new update is answered busy until "
                     f"{_when(session['busy_until'])} (qbwc.takeover_after_minutes)")
        if session.get("last_error"):
            text += f" ({session['last_error']})"
    return Text(text)


def _company_line(company: dict[str, Any]) -> Text:
    """The company file's settings that decide what may post, as QuickBooks last reported them."""

    def said(value: Any, yes: str, no: str) -> str:
        return "not reported" if value is None else (yes if value else no)

    money = said(company.get("multicurrency"), f"on (home {company.get('home_currency') or 'not reported'})", "off")
    text = (f"QuickBooks company file: {company.get('company_name') or 'name not reported'}"
            f" ({company.get('country') or 'edition not reported'}); class tracking "
            f"{said(company.get('class_tracking'), 'on', 'off')}; multi-currency {money}; closing date "
            f"{company.get('closing_date') or 'none'}; read {_when(company.get('read_at'))}")
    return Text(text)


def _when(iso: str | None) -> str:
    return human(iso)


def _part(item: dict[str, Any]) -> str:
    # Part 0 is a report's bill payment (plan/bill_payment.py); its bills count from 1.
    return "payment" if item["part"] == 0 else f"{item['part']}/{item['part_count']}"


def _attention_tables(report: dict[str, Any]) -> list[RenderableType]:
    parts: list[RenderableType] = []
    duplicates = report.get("duplicates")
    if duplicates and duplicates["items"]:
        table = Table(title="In QuickBooks twice (void the duplicate; ml-connector never deletes)", title_justify="left")
        for name in ("Report", "Part", "Kept TxnID", "Duplicate TxnID", "Fix"):
            table.add_column(name, overflow="fold")
        for item in duplicates["items"]:
            table.add_row(item["report_id"], _part(item), item["kept_txn_id"] or "",
                          ", ".join(item["duplicate_txn_ids"]), Text(item["fix"], style="red"))
        parts.append(table)
        if duplicates["more"]:
            parts.append(Text(f"… and {duplicates['more']} more (mlconnector audit --event duplicate_in_quickbooks)"))
    blocked, failed = report.get("blocked"), report.get("failed")
    if blocked and blocked["items"]:
        table = Table(title="Blocked (fix, then mlconnector replay REPORT_ID)", title_justify="left")
        for name in ("Report", "Part", "Reason and fix"):
            table.add_column(name, overflow="fold")
        for item in blocked["items"]:
            table.add_row(item["report_id"], _part(item), Text(item["reason"]))
        parts.append(table)
        if blocked["more"]:
            parts.append(Text(f"… and {blocked['more']} more blocked (mlconnector map check lists every name)"))
    if failed and failed["items"]:
        table = Table(title="Failed in QuickBooks (fix, then mlconnector replay REPORT_ID)", title_justify="left")
        for name in ("Report", "Part", "When", "QuickBooks said"):
            table.add_column(name, overflow="fold")
        for item in failed["items"]:
            said = (f"{item['qb_status_code']}: {item['qb_status_message'] or ''}"
                    if item["qb_status_code"] is not None else item["reason"])
            table.add_row(item["report_id"], _part(item), _when(item["at"]), Text(said, style="red"))
        parts.append(table)
        if failed["more"]:
            parts.append(Text(f"… and {failed['more']} more failed (mlconnector audit --event failed)"))
    return parts


_EVENT_STYLE = {"failed": "red", "blocked": "yellow", "posted": "green", "recovered": "green",
                "in_doubt": "yellow", "changed_after_posting": "red", "replayed": "cyan"}


def audit_table(rows: list[dict[str, Any]], *, matching: int, limit: int | None) -> RenderableType:
    """The ``audit`` listing: one line per event, oldest first, and a footer when rows were left out."""
    if not rows:
        return Text("No audit rows match.")
    table = Table(title_justify="left")
    for name, kwargs in (("Time", {"no_wrap": True}), ("Event", {}), ("Report", {}), ("Posting", {}),
                         ("By", {}), ("What", {"overflow": "fold"})):
        table.add_column(name, **kwargs)
    for row in rows:
        table.add_row(
            human(row["at"]), Text(row["event"], style=_EVENT_STYLE.get(row["event"], "")),
            row["report_id"] or "", str(row["posting_id"] or ""), row["actor"], Text(row["summary"]),
        )
    if len(rows) >= matching:
        return table
    footer = Text(f"Showing the newest {len(rows)} of {matching} rows (limit {limit}); "
                  "--limit 0 shows all, --format csv or json exports them.", style="dim")
    return Group(table, footer)


def mappings_table(rows: list[dict[str, Any]]) -> RenderableType:
    """The ``map list`` table."""
    if not rows:
        return Text("No mappings yet. Add one with: mlconnector map set KIND SOURCE TARGET")
    table = Table(title="Mappings", title_justify="left")
    for name in ("Kind", "Expensify", "QuickBooks", "Updated"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(row["kind"], Text(row["source"]), Text(row["target"]), human(row["updated_at"]))
    return table


_HOW = {
    "mapped": "mapped",
    "mapped_unchecked": "mapped (QuickBooks list not fetched yet)",
    "same_name": "same name in QuickBooks",
    "same_name_unchecked": "same name, unchecked (QuickBooks list not fetched yet)",
    "email_match": "vendor with this email",
    "unresolved": "BLOCKS",
}


def mapping_check_view(check: dict[str, Any]) -> RenderableType:
    """The ``map check`` screen: every name in use, how it resolves, and what blocks which reports."""
    names = check["names"]
    summary = Text(
        f"{check['reports_checked']} unposted report(s) checked; {check['blocking']} name(s) block reports."
        f" QuickBooks lists cached: {', '.join(check['lists_cached']) or 'none yet'}.",
        style="red" if check["blocking"] else "green",
    )
    if not names:
        return summary
    table = Table(title_justify="left")
    for name in ("Kind", "Expensify", "QuickBooks", "How", "Reports", "Fix"):
        table.add_column(name, overflow="fold")
    for n in names:
        reports = ", ".join(n["reports"][:5]) + (f" +{len(n['reports']) - 5}" if len(n["reports"]) > 5 else "")
        how = _HOW.get(n["how"], n["how"])
        fix = f"{n['problem']}: {n['fix']}" if n["problem"] else ""
        table.add_row(n["kind"], Text(n["source"]), Text(n["target"] or "—"),
                      Text(how, style="red" if n["target"] is None else ""), reports, Text(fix))
    return Group(summary, table)
