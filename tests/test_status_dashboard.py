from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any, cast

from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.config import QuickBooksConfig
from mlconnector.models import PostingState
from mlconnector.services.mappings import set_mapping
from mlconnector.services.queue import plan_and_queue
from mlconnector.services.status import attention
from mlconnector.store import Store
from mlconnector.store.postings import postings_for_report, transition
from mlconnector.store.reports import save_report

from .factories import report

README = Path(__file__).resolve().parent.parent / "README.md"

# The keys of `status --json`: scripts depend on them, so they may be added to but never renamed.
STATUS_KEYS = {
    "home", "config", "state", "postings", "log_dir", "reports", "blocked_reasons", "last_pull", "changed_after_posting",
    "last_qbwc_contact", "qbwc_session", "blocked", "failed", "duplicates", "quickbooks_company", "bill_payments", "schedule", "alerts",
}
SESSION_KEYS = {"state", "started_at", "last_seen_at", "closed_at", "last_error", "awaiting_answer", "busy_until"}
FAILED_ITEM_KEYS = {"report_id", "part", "part_count", "ref_number", "reason", "qb_status_code",
                    "qb_status_message", "at"}
BLOCKED_ITEM_KEYS = {"report_id", "part", "part_count", "reason"}


def _fill(store: Store) -> None:
    """R1 queued, R2 failed with QuickBooks 3140, R3 blocked (no vendor for bob); one Web Connector session."""
    for rid in ("R1", "R2"):
        save_report(store, report(rid))
    save_report(store, report("R3", submitter_email="bob@example.com"))
    set_mapping(store, "employee", "ann@example.com", "Ann Smith", actor="t")
    plan_and_queue(store, QuickBooksConfig(), today=dt.date(2026, 4, 1))
    posting = postings_for_report(store, "R2")[0]
    transition(store, posting.id, PostingState.SENT, actor="serve")
    transition(store, posting.id, PostingState.FAILED, actor="serve", qb_status_code=3140,
               qb_status_message='There is an invalid reference to QuickBooks Account "Travel" in the Bill.')
    store.set_setting("qbwc.last_contact", "2026-04-01T08:00:00.000+00:00")
    store.conn.execute(
        "INSERT INTO qbwc_sessions (ticket, username, state, created_at, last_seen_at, closed_at)"
        " VALUES ('tkt-secret', 'mlc', 'closed', '2026-04-01T08:00:00.000+00:00',"
        " '2026-04-01T08:00:05.000+00:00', '2026-04-01T08:00:06.000+00:00')"
    )


def _status(cli: CliRunner) -> dict[str, object]:
    result = cli.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_status_json_keeps_a_stable_key_set_before_and_after_work(cli: CliRunner, home: Path) -> None:
    assert set(_status(cli)) == STATUS_KEYS
    store = Store.open(home / "state.db")
    _fill(store)
    store.close()
    data = _status(cli)
    assert set(data) == STATUS_KEYS
    assert set(cast(dict[str, Any], data["qbwc_session"])) == SESSION_KEYS
    assert set(data["failed"]["items"][0]) == FAILED_ITEM_KEYS  # type: ignore[index]
    assert set(data["blocked"]["items"][0]) == BLOCKED_ITEM_KEYS  # type: ignore[index]


def test_status_json_before_init_has_the_same_keys(home: Path) -> None:
    result = CliRunner().invoke(app, ["status", "--json"])
    data = json.loads(result.output)
    assert set(data) == STATUS_KEYS and data["qbwc_session"] is None and data["failed"]["items"] == []


def test_status_shows_last_contact_and_the_blocked_and_failed_reports_with_reasons(cli: CliRunner, home: Path) -> None:
    store = Store.open(home / "state.db")
    _fill(store)
    store.close()
    data = _status(cli)
    assert data["last_qbwc_contact"] == "2026-04-01T08:00:00.000+00:00"
    assert data["qbwc_session"] == {"state": "closed", "started_at": "2026-04-01T08:00:00.000+00:00",
                                    "last_seen_at": "2026-04-01T08:00:05.000+00:00",
                                    "closed_at": "2026-04-01T08:00:06.000+00:00", "last_error": None,
                                    "awaiting_answer": False, "busy_until": None}
    failed = data["failed"]
    assert failed["count"] == 1 and failed["more"] == 0  # type: ignore[index]
    (item,) = failed["items"]  # type: ignore[index]
    assert (item["report_id"], item["part"], item["qb_status_code"]) == ("R2", 1, 3140)
    (blocked,) = data["blocked"]["items"]  # type: ignore[index]
    assert blocked["report_id"] == "R3" and "bob@example.com" in blocked["reason"]
    result = cli.invoke(app, ["--utc", "status"], env={"COLUMNS": "200"})
    assert "tkt-secret" not in result.output and "tkt-secret" not in json.dumps(data)
    assert "Web Connector: last login 2026-04-01 08:00:00 UTC; newest session closed" in result.output
    # By default local time with its zone, in the same one format.
    local = cli.invoke(app, ["status"], env={"COLUMNS": "200"}).output
    when = dt.datetime(2026, 4, 1, 8, tzinfo=dt.timezone.utc).astimezone()
    assert f"last login {when:%Y-%m-%d %H:%M:%S} " in local
    assert re.search(r"last login \d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d\d:\d\d;", local)
    assert "3140: There is an invalid reference" in result.output and "R3" in result.output


def test_status_lists_at_most_20_of_each_and_counts_the_rest(store: Store) -> None:
    for n in range(23):
        save_report(store, report(f"R{n:03d}"))
    plan_and_queue(store, QuickBooksConfig(), today=dt.date(2026, 4, 1))
    blocked = attention(store)["blocked"]
    assert (blocked["count"], len(blocked["items"]), blocked["more"]) == (23, 20, 3)
    assert blocked["items"][0]["report_id"] == "R000"


def test_every_status_json_key_is_documented_in_the_readme() -> None:
    text = README.read_text()
    section = text.split("## Status JSON", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)`", section, flags=re.M))
    assert documented == STATUS_KEYS
