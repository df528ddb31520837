from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent


def _fill(home: Path) -> None:
    """initialized (by init, now), then R1 pulled/sent/posted on 1 March 2030, R2 pulled/failed on 5 March 2030."""
    clock = [dt.datetime(2030, 3, 1, 9, 0, tzinfo=dt.timezone.utc)]
    store = Store.open(home / "state.db", now=lambda: clock[0])
    with store.atomic():
        store.audit.append(AuditEvent.PULLED, actor="pull", report_id="R1", detail={"total": "19.75"})
        store.audit.append(AuditEvent.SENT, actor="serve", report_id="R1", posting_id=1,
                           detail={"message_set_id": "mlc-1"})
        store.audit.append(AuditEvent.POSTED, actor="serve", report_id="R1", posting_id=1,
                           detail={"txn_id": "1A-2", "edit_sequence": "171"})
    clock[0] = dt.datetime(2030, 3, 5, 9, 0, tzinfo=dt.timezone.utc)
    with store.atomic():
        store.audit.append(AuditEvent.PULLED, actor="pull", report_id="R2", detail={"total": "5.00"})
        store.audit.append(AuditEvent.FAILED, actor="serve", report_id="R2", posting_id=2,
                           detail={"qb_status_code": 3140, "qb_status_message": 'invalid reference "Travel"'})
    store.close()


def _json(cli: CliRunner, *args: str) -> list[dict[str, object]]:
    result = cli.invoke(app, ["audit", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_audit_lists_every_event_in_order_as_a_table(cli: CliRunner, home: Path) -> None:
    _fill(home)
    result = cli.invoke(app, ["audit"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("initialized") < out.index("pulled") < out.index("posted") < out.index("failed")
    assert "TxnID 1A-2; EditSequence 171" in out and 'QuickBooks 3140: invalid reference "Travel"' in out
    assert "2030-03-01 09:00:00" in out and "Showing the newest" not in out


def test_audit_report_shows_one_reports_whole_timeline(cli: CliRunner, home: Path) -> None:
    _fill(home)
    rows = _json(cli, "--report", "R1")
    assert [r["event"] for r in rows] == ["pulled", "sent", "posted"]
    assert {r["report_id"] for r in rows} == {"R1"}


def test_audit_json_and_csv_parse_back_with_the_same_rows(cli: CliRunner, home: Path) -> None:
    _fill(home)
    rows = _json(cli)
    assert [r["event"] for r in rows] == ["initialized", "pulled", "sent", "posted", "pulled", "failed"]
    assert rows[-1]["detail"] == {"qb_status_code": 3140, "qb_status_message": 'invalid reference "Travel"'}
    result = cli.invoke(app, ["audit", "--format", "csv"])
    assert result.exit_code == 0
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert [p["id"] for p in parsed] == [str(r["id"]) for r in rows]
    assert json.loads(parsed[-1]["detail"])["qb_status_code"] == 3140
    assert parsed[-1]["summary"] == 'QuickBooks 3140: invalid reference "Travel"'


def test_audit_filters_by_event_and_since_a_day_or_a_date_time(cli: CliRunner, home: Path) -> None:
    _fill(home)
    assert [r["report_id"] for r in _json(cli, "--event", "pulled")] == ["R1", "R2"]
    assert [r["event"] for r in _json(cli, "--since", "2030-03-05")] == ["pulled", "failed"]
    assert [r["event"] for r in _json(cli, "--since", "2030-03-05T10:00:00+01:00")] == ["pulled", "failed"]
    assert _json(cli, "--since", "2030-03-05T09:00:01") == []


def test_audit_limit_keeps_the_newest_rows_and_the_table_says_what_was_left_out(cli: CliRunner, home: Path) -> None:
    _fill(home)
    assert [r["event"] for r in _json(cli, "--limit", "2")] == ["pulled", "failed"]
    result = cli.invoke(app, ["audit", "--limit", "2"], env={"COLUMNS": "200"})
    assert "Showing the newest 2 of 6 rows (limit 2); --limit 0 shows all" in result.output
    assert len(_json(cli, "--limit", "0")) == 6


def test_audit_table_shows_at_most_200_rows_by_default(cli: CliRunner, home: Path) -> None:
    store = Store.open(home / "state.db")
    with store.atomic():
        for n in range(250):
            store.audit.append(AuditEvent.NOTE, actor="t", detail={"n": n})
    store.close()
    result = cli.invoke(app, ["audit"], env={"COLUMNS": "200"})
    assert "Showing the newest 200 of 251 rows (limit 200)" in result.output
    assert "n=249" in result.output and "n=49\n" not in result.output and "n=50 " in result.output
    assert len(_json(cli)) == 251


def test_an_unknown_event_exits_1_and_lists_the_valid_ones(cli: CliRunner) -> None:
    result = cli.invoke(app, ["audit", "--event", "exploded"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown event 'exploded' — use one of ")
    assert result.output.count("\n") == 1 and "posted, pull_failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "Error: unknown format 'xml' — use --format table, json or csv"),
        (["--limit", "-1"], "Error: --limit -1 is negative"),
    ],
)
def test_bad_audit_options_exit_1_in_one_line(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["audit", *args])
    assert result.exit_code == 1 and result.output.startswith(message) and result.output.count("\n") == 1


@pytest.mark.parametrize("command", [["audit", "--since"], ["pull", "--since"], ["pull", "--until"],
                                     ["init", "--non-interactive", "--start-date"]])
def test_a_bad_date_is_a_usage_error_exit_2_naming_the_format_in_every_command(
    cli: CliRunner, command: list[str]
) -> None:
    result = cli.invoke(app, [*command, "03/05/2026"])
    assert result.exit_code == 2, result.output
    assert "'03/05/2026' is not a day: write the day as YYYY-MM-DD, e.g. 2026-01-31" in result.output
    assert "%Y" not in result.output


def test_audit_before_init_says_what_to_do_and_creates_nothing(home: Path) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert result.output == f"Error: no state file at {home / 'state.db'} — run mlconnector init first\n"
    assert not (home / "state.db").exists()


def test_audit_verify_says_an_untouched_log_is_intact(cli: CliRunner, home: Path) -> None:
    _fill(home)
    result = cli.invoke(app, ["audit", "verify"])
    assert (result.exit_code, result.output) == (0, "audit log intact: 6 rows, 0 stored qbXML message(s) unchanged\n")


def _tamper(home: Path, *statements: str) -> None:
    """What someone covering their tracks would do: drop the guard trigger, then edit."""
    conn = sqlite3.connect(home / "state.db")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("DROP TRIGGER audit_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_audit_verify_names_the_first_edited_row(cli: CliRunner, home: Path) -> None:
    _fill(home)
    _tamper(home, """UPDATE audit SET detail = '{"edit_sequence": "171", "txn_id": "9Z-9"}' WHERE id = 4""")
    result = cli.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: row 4 (2030-03-01 09:00:00, event posted, report R1) does not match the chain:"
        " the audit log was edited\n"
    )


def test_audit_verify_notices_rows_removed_from_the_middle_or_the_end(cli: CliRunner, home: Path) -> None:
    _fill(home)
    _tamper(home, "DELETE FROM audit WHERE id = 3")
    result = cli.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1 and "row 4 (2030-03-01 09:00:00, event posted, report R1)" in result.output
    assert result.output.endswith("does not match the chain: rows before it were removed\n")


def test_audit_verify_notices_rows_cut_off_the_end(cli: CliRunner, home: Path) -> None:
    _fill(home)
    _tamper(home, "DELETE FROM audit WHERE id >= 5")
    result = cli.invoke(app, ["audit", "verify"])
    assert (result.exit_code, result.output) == (1, "Error: the last 2 row(s) of the audit log were removed\n")
