"""Rich renderables built from plain data; nothing here reads state or prints."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def status_view(report: dict[str, Any]) -> RenderableType:
    """The ``status`` screen: config, state file and a table of posting counts."""
    config, state = report["config"], report["state"]
    lines = []
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
        lines.append(Text(f"Last pull: {last['result'] or 'running'} at {when}"
                          + (f" ({last['error']})" if last.get("error") else "")))
    if report.get("changed_after_posting"):
        lines.append(Text("Changed in Expensify after posting (check QuickBooks by hand): "
                          + ", ".join(report["changed_after_posting"]), style="yellow"))
    table = Table(title="Postings", title_justify="left")
    table.add_column("State")
    table.add_column("Count", justify="right")
    for name, count in report["postings"].items():
        table.add_row(name, str(count))
    return Group(*lines, table)
