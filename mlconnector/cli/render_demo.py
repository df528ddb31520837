"""Rich renderables for ``mlconnector demo``, built from :meth:`DemoResult.as_dict` (its ``--json`` shape)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from mlconnector.cli.times import human


def _amount(text: str) -> str:
    return f"{Decimal(text):,.2f}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _requests(names: dict[str, int]) -> str:
    return ", ".join(name if n == 1 else f"{n} × {name}" for name, n in names.items())


def story_view(data: dict[str, Any]) -> RenderableType:
    """What happened, in order, in plain words."""
    first, second = data["first_pull"], data["second_pull"]
    plan = first["plan"]
    waiting = len(plan["blocked_reports"])
    lines = [
        Text.assemble(("1. ", "bold"), f"Pulled {_plural(first['counts']['new'], 'approved report')} over HTTP "
                      f"from the Expensify simulator ({data['expensify_url']}) into a fresh state file."),
        Text.assemble(("2. ", "bold"), f"Planned them: {len(plan['queued'])} queued, {waiting} waiting"
                      + (" for QuickBooks' vendor list (employees are matched to vendors by e-mail)."
                         if waiting and any("not been fetched yet" in b["reason"] for b in plan["blocked"])
                         else ".")),
        Text.assemble(("3. ", "bold"), f"The Web Connector ran {_plural(len(data['web_connector_runs']), 'time')} "
                      f"against mlconnector serve ({data['server_url']}) and QuickBooks "
                      f"({data['quickbooks']['company']}):"),
    ]
    for run in data["web_connector_runs"]:
        if run["round_trips"]:
            trips = "; ".join(f"{n}) {_requests(names)}" for n, names in enumerate(run["requests"], 1))
            what = f"{_plural(run['round_trips'], 'round trip')}: {trips}"
        else:
            what = "nothing to post"
        lines.append(Text(f"     run {run['run']}: {what} — \"{run['close_message'] or run['stopped']}\""))
    for t in data["transactions"]:
        if t["type"] == "Bill payment":
            lines.append(Text(f"     Report {t['report_id']} was already reimbursed in Expensify, so its bill was paid "
                              f"in the same update: bill payment {t['ref_number']} of {_amount(t['total'])} "
                              f"{t['accounts'][0]['account']}, dated {t['txn_date']}."))
    stamped = second["stamped"]
    lines.append(Text.assemble(("4. ", "bold"), f"Pulled again: {_plural(len(stamped), 'posted report')} stamped as "
                               "exported in Expensify, so they are never exported twice."))
    return Group(*lines)


_KINDS = {"Bill": ("bill", "bills"), "Journal entry": ("journal entry", "journal entries"),
          "Check": ("check", "checks"), "Vendor credit": ("vendor credit", "vendor credits"),
          "Card charge": ("credit card charge", "credit card charges"),
          "Card credit": ("credit card credit", "credit card credits"),
          "Bill payment": ("bill payment", "bill payments")}


def _count_kind(n: int, kind: str) -> str:
    one, many = _KINDS.get(kind, (kind.lower(), kind.lower() + "s"))
    return f"{n} {one if n == 1 else many}"


def _accounts_grid(accounts: list[dict[str, str]]) -> RenderableType:
    grid = Table.grid(padding=(0, 1))
    grid.add_column()
    grid.add_column(justify="right", no_wrap=True)
    for a in accounts:
        grid.add_row(Text(a["account"]), _amount(a["amount"]))
    return grid


def transactions_table(data: dict[str, Any]) -> RenderableType:
    """Reports → the QuickBooks transactions that hold them (two lines a row, so it fits 80 columns)."""
    txns = data["transactions"]
    kinds = sorted({t["type"] for t in txns})
    what = " and ".join(_count_kind(sum(1 for t in txns if t["type"] == k), k) for k in kinds)
    table = Table(title=f"Posted to QuickBooks: {what or 'nothing'}", title_justify="left", title_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False, caption_justify="left", caption_style="dim",
                  caption=("Total: what the employee was paid by check" if data.get("mode") == "check" else
                           "Total: what the employee is owed (Accounts Payable)")
                  + "; a card charge: what the company card paid; a bill payment: what the bank paid the employee."
                  " Accounts: where it was spent, refunds subtracted."
                  + (" A journal entry's RefNumber (11 characters at most) is derived from the report ID, which"
                     " starts every line memo." if data.get("mode") == "journal" else ""))
    # IDs never wrap (a broken TxnID cannot be searched for); names and accounts wrap at spaces.
    table.add_column("Report, employee", no_wrap=True)
    table.add_column("QuickBooks transaction", no_wrap=True)
    table.add_column("Total", justify="right", no_wrap=True)
    table.add_column("Accounts")
    for t in txns:
        table.add_row(
            Text.assemble(t["report_id"], "\n", (t["employee"], "dim")),
            Text.assemble(f"{t['type']} {t['ref_number']}", "\n", ("TxnID ", "dim"), t["txn_id"], "\n",
                          ("Vendor ", "dim"), t["vendor"]),
            _amount(t["total"]),
            _accounts_grid(t["accounts"]),
        )
    return table


def blocked_view(data: dict[str, Any]) -> RenderableType:
    """The report that did not post, why, and the command that fixes it."""
    blocked = data["blocked"]
    if not blocked:
        return Text("Nothing was blocked.", style="green")
    parts: list[RenderableType] = [
        Text("Blocked, as expected: this is what a missing mapping looks like", style="bold yellow")
    ]
    for b in blocked:
        parts.append(Text(f"  {b['report_id']}  {b['employee']}, \"{b['name']}\", {_amount(b['total'])}"))
        parts.append(Text.assemble("    Reason: ", (b["reason"], "yellow")))
        if b["fix"]:
            parts.append(Text(f"    Fix:    {b['fix']}"))
    parts.append(Text("    (a mapping change plans blocked reports again; the next Web Connector run posts them)",
                      style="dim"))
    return Group(*parts)


def audit_view(data: dict[str, Any]) -> RenderableType:
    """The audit trail of one posted report."""
    trail = data["audit_trail"]
    report = next((r for r in data["reports"] if r["report_id"] == trail["report_id"]), None)
    who = f" ({report['employee']}, \"{report['name']}\")" if report else ""
    table = Table(title=f"Audit trail of {trail['report_id']}{who}", title_justify="left", title_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Time", no_wrap=True)
    table.add_column("By", no_wrap=True)
    table.add_column("Event", no_wrap=True)
    table.add_column("What", overflow="fold")
    for row in trail["rows"]:
        table.add_row(human(row["at"])[11:], row["actor"], row["event"], Text(row["summary"]))
    return table


def next_steps_view(data: dict[str, Any], inspect: list[str]) -> RenderableType:
    """Where the demo's home went, and the commands that take a real installation live."""
    parts: list[RenderableType] = []
    kept = data["kept"]
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in data["timings"].items())
    parts.append(Text(
        f"Done in {data['elapsed_seconds']:.1f} s ({stages}). Nothing is left running; "
        + (f"the demo's home is kept at {data['home']}" + (". Look inside:" if inspect else ".") if kept
           else "the temporary home was removed (--keep keeps it)."),
        style="green",
    ))
    if kept and inspect:
        for command in inspect:
            parts.append(Text(f"  {command}"))
    steps = Table.grid(padding=(0, 2))
    steps.add_column(style="bold")
    steps.add_column()
    for n, step in enumerate(data["next_steps"], 1):
        steps.add_row(f"{n}. {step['command']}", step["does"])
    parts.append(Text(""))
    parts.append(Text("Go live", style="bold"))
    parts.append(Padding(steps, (0, 0, 0, 2), expand=False))  # not as wide as a piped console
    return Group(*parts)


def demo_view(data: dict[str, Any], inspect: list[str] | None = None) -> RenderableType:
    """The whole ``demo`` screen. ``inspect``: commands to look inside a kept home."""
    title = Text.assemble(
        ("ml-connector demo", "bold"),
        f": Expensify → QuickBooks Desktop, offline, against built-in simulators ({data['mode']} mode)",
    )
    blank = Text("")
    return Group(title, blank, story_view(data), blank, transactions_table(data), blank, blocked_view(data), blank,
                 audit_view(data), blank, next_steps_view(data, inspect or []))
