"""`mlconnector demo` end to end: the real flow over loopback HTTP, what it shows, and what it leaves behind."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.models import PostingState, ReimbursableMode
from mlconnector.sandbox import demo as demo_module
from mlconnector.sandbox import demo_sample as sample
from mlconnector.sandbox.demo import DemoResult, demo_home, run_demo
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.store import Store
from mlconnector.store.postings import postings_in

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
POSTED_IDS = sorted(r.report_id for r in sample.SAMPLE if r.report_id != sample.BLOCKED_REPORT_ID)
SAMPLE_TOTALS = {r.report_id: Decimal(r.total_cents) / 100 for r in sample.SAMPLE}


@pytest.fixture(autouse=True)
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo's temporary homes go under this test's folder, so leftovers can be counted."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def _demo_homes(root: Path) -> list[Path]:
    return sorted(root.glob("mlconnector-demo-*"))


def _live_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.is_alive()}


def _threads_left(before: set[threading.Thread], grace: float = 3.0) -> set[threading.Thread]:
    """Threads started since ``before`` still alive after ``grace`` seconds (handler threads end on their own)."""
    deadline = time.monotonic() + grace
    while True:
        left = _live_threads() - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _refuses_connections(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        try:
            sock.connect((parts.hostname or "127.0.0.1", parts.port or 80))
        except (ConnectionRefusedError, TimeoutError, OSError):
            return True
    return False


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _check_sample_outcome(data: dict[str, Any]) -> None:
    """What every demo run must show, in either mode."""
    payments = [t for t in data["transactions"] if t["type"] == "Bill payment"]
    txns = [t for t in data["transactions"] if t["type"] != "Bill payment"]
    # The report Expensify had reimbursed: in bill mode its bill is paid from Checking in the same update.
    reimbursed = [r.report_id for r in sample.SAMPLE if r.state == "REIMBURSED"]
    if data["mode"] == "bill":
        assert [p["report_id"] for p in payments] == reimbursed
        assert all(Decimal(p["total"]) == SAMPLE_TOTALS[p["report_id"]] for p in payments)
        assert all(p["accounts"] == [{"account": "paid from Checking", "amount": p["total"]}] for p in payments)
        assert data["quickbooks"]["bill_payments"] == 1
    else:
        assert payments == []  # only bills are paid
    assert sorted(t["report_id"] for t in txns) == POSTED_IDS
    assert {t["report_id"]: Decimal(t["total"]) for t in txns} == {r: SAMPLE_TOTALS[r] for r in POSTED_IDS}
    assert all(Decimal(t["total"]) == Decimal(t["report_total"]) for t in txns)
    assert all(re.fullmatch(r"[0-9A-F]+-\d+", t["txn_id"]) for t in txns)
    assert len({t["txn_id"] for t in txns}) == len(txns)
    # Vendors were matched by e-mail: no employee mapping exists in the demo's home.
    assert all(t["vendor"] == t["employee"] for t in txns if t["report_id"] != sample.CARD_REPORT_ID)
    (card,) = [t for t in txns if t["report_id"] == sample.CARD_REPORT_ID]
    # The company-card purchase: one credit-card charge on the card account, payee the merchant's vendor.
    assert (card["type"], card["vendor"], card["credit_account"]) == ("Card charge", "Staples", sample.CARD_ACCOUNT)
    for t in txns:  # the accounts column adds up to what the employee is owed
        assert sum(Decimal(a["amount"]) for a in t["accounts"]) == Decimal(t["total"])
    (blocked,) = data["blocked"]
    assert blocked["report_id"] == sample.BLOCKED_REPORT_ID
    assert blocked["field"] == "category" and sample.BLOCKING_CATEGORY in blocked["reason"]
    assert blocked["fix"].startswith(f'run mlconnector map set category "{sample.BLOCKING_CATEGORY}"')
    assert data["second_pull"]["stamped"] == POSTED_IDS
    assert {r["report_id"]: r["exported_in_expensify"] for r in data["reports"]} == {
        r.report_id: r.report_id != sample.BLOCKED_REPORT_ID for r in sample.SAMPLE}
    runs = data["web_connector_runs"]
    assert runs[0]["stopped"] == "done" and runs[-1]["authenticate"] == "none"
    # The lists, then every write in one message: not one round trip per report.
    # Then, in bill mode, the reimbursed report's bill is checked and paid.
    assert runs[0]["round_trips"] == (4 if data["mode"] == "bill" else 2)
    events = [row["event"] for row in data["audit_trail"]["rows"]]
    assert data["audit_trail"]["report_id"] == sample.FEATURED_REPORT_ID
    for event in ("pulled", "queued", "requeried", "sent", "posted", "stamped_exported"):
        assert event in events, events
    assert events.index("posted") < events.index("stamped_exported")


@pytest.mark.parametrize("mode", ["bill", "journal"])
def test_demo_json_has_every_part_and_totals_that_match_the_sample(mode: str, temp_root: Path) -> None:
    result = _invoke("demo", "--json", "--mode", mode)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {
        "home", "kept", "mode", "expensify_url", "server_url", "reports", "transactions", "blocked", "first_pull",
        "second_pull", "web_connector_runs", "audit_trail", "quickbooks", "timings", "elapsed_seconds", "next_steps",
    }
    assert data["mode"] == mode and data["kept"] is False
    _check_sample_outcome(data)
    kind = "Bill" if mode == "bill" else "Journal entry"
    assert {t["type"] for t in data["transactions"]} == {kind, "Card charge"} | (
        {"Bill payment"} if kind == "Bill" else set())
    counts = data["quickbooks"]
    assert (counts["bills"], counts["journal_entries"]) == ((4, 0) if mode == "bill" else (0, 4))
    refund = next(t for t in data["transactions"] if t["report_id"] == "R00Ps7Tb2eHc")
    if mode == "bill":  # a refund is a negative expense line on the bill
        assert [ln["amount"] for ln in refund["lines"]] == ["64.99", "-15.00", "129.00"]
    else:  # a journal entry never carries a negative amount: the refund is a credit line
        assert ("credit", "Office Supplies", "15.00") in [(ln["side"], ln["account"], ln["amount"])
                                                           for ln in refund["lines"]]
    trip = next(t for t in data["transactions"] if t["report_id"] == sample.FEATURED_REPORT_ID)
    billable = [ln for ln in trip["lines"] if ln["billable"]]
    assert billable and all(ln["customer"] == sample.GLOBEX_JOB and ln["class"] == "Sales" for ln in billable)
    assert [s["command"] for s in data["next_steps"]] == [
        "mlconnector init", "mlconnector map refresh", "mlconnector map check", "mlconnector pull",
        "mlconnector qwc", "mlconnector serve"]
    assert "scrypt$" not in result.stdout and "password_hash" not in result.stdout
    assert _demo_homes(temp_root) == []  # removed without --keep


def test_demo_shows_transactions_the_blocked_report_the_audit_trail_and_how_to_go_live(temp_root: Path) -> None:
    before = _live_threads()
    result = _invoke("demo")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Posted to QuickBooks: 4 bills" in out
    assert len(set(re.findall(r"TxnID [0-9A-F]+-\d+", out))) == 6  # 4 bills, the card charge, a bill payment
    assert "was already reimbursed in Expensify, so its bill was paid in the same update" in out
    for report_id in [*POSTED_IDS, sample.BLOCKED_REPORT_ID]:
        assert report_id in out
    assert "1,011.45" in out and "Meals and Entertainment" in out
    assert 'category "Team Offsite" is unmapped' in out
    assert 'mlconnector map set category "Team Offsite"' in out
    assert f"Audit trail of {sample.FEATURED_REPORT_ID}" in out and "stamped_exported" in out
    assert "Ann O'Brien" in out and "Chloé Dubois" in out
    assert re.search(r"Done in \d+\.\d s", out)
    for command in ("init", "map refresh", "map check", "pull", "qwc", "serve"):
        assert f"mlconnector {command}" in out
    assert "4 × BillAddRq" in out and "CreditCardChargeAddRq" in out and "Posted 6, failed 0" in out
    assert "BillPaymentCheckAddRq" in out
    assert _threads_left(before) == set()
    assert _demo_homes(temp_root) == []


def test_demo_leaves_no_thread_and_no_listening_socket(temp_root: Path) -> None:
    before = _live_threads()
    with demo_home() as home:
        result = run_demo(home)
    assert _threads_left(before) == set()
    assert _refuses_connections(result.expensify_url)
    assert _refuses_connections(result.server_url)
    assert not home.exists()


def test_keep_keeps_a_home_whose_state_file_holds_the_postings(temp_root: Path) -> None:
    result = _invoke("demo", "--keep", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    home = Path(data["home"])
    assert data["kept"] is True and home.is_dir() and home.parent == temp_root
    assert (home / "logs" / "mlconnector.log").is_file()
    config_text = (home / "config.toml").read_text()
    assert "password_hash = \"scrypt$" in config_text
    store = Store.open(home / "state.db")
    try:
        posted = {p.report_id: p.txn_id for p in postings_in(store, PostingState.POSTED) if p.part != 0}
        blocked = [p.report_id for p in postings_in(store, PostingState.BLOCKED)]
        stamped = sorted(r[0] for r in store.conn.execute(
            "SELECT report_id FROM reports WHERE exported_stamped_at IS NOT NULL"))
        assert store.audit.verify() is None
    finally:
        store.close()
    assert posted == {t["report_id"]: t["txn_id"] for t in data["transactions"] if t["part"] != "payment"}
    assert blocked == [sample.BLOCKED_REPORT_ID]
    assert stamped == POSTED_IDS
    status = _invoke("--home", str(home), "status", "--json")
    assert status.exit_code == 0, status.output
    counts = json.loads(status.stdout)["postings"]
    assert (counts["posted"], counts["blocked"]) == (6, 1)  # 5 reports and one bill payment


def test_keep_prints_the_home_and_how_to_inspect_it(temp_root: Path) -> None:
    result = _invoke("demo", "--keep")
    assert result.exit_code == 0, result.output
    (home,) = _demo_homes(temp_root)
    flat = " ".join(result.stdout.split())
    assert f"the demo's home is kept at {home}" in flat
    assert f"mlconnector --home {home} status" in flat


def test_the_demo_creates_nothing_in_the_users_home(temp_root: Path, home: Path) -> None:
    result = _invoke("demo")
    assert result.exit_code == 0, result.output
    assert not home.exists()  # not even logs/: the demo logs into its temporary home


def test_the_demo_never_reads_the_users_home_or_config(temp_root: Path, home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir()
    (home / "config.toml").write_text("this is = not [valid toml\n")
    monkeypatch.setenv("MLCONNECTOR_CONFIG", str(home / "config.toml"))
    result = _invoke("demo", "--json")
    assert result.exit_code == 0, result.output
    assert (home / "config.toml").read_text() == "this is = not [valid toml\n"
    assert not (home / "state.db").exists()


def test_requests_the_demo_sends_validate_against_intuits_schemas(reference_dir: Path, temp_root: Path) -> None:
    for mode in ReimbursableMode:
        with demo_home() as home:
            result = run_demo(home, mode=mode, schema_dir=reference_dir / "qbxml")
        _check_sample_outcome(result.as_dict())


class _RefusingExpensify(ExpensifySimulator):
    def start(self) -> ExpensifySimulator:
        self.fail_next("auth", times=20)
        return super().start()


def test_a_broken_demo_is_one_line_exit_1_keeps_its_home_for_the_log_and_leaves_nothing_running(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_module, "ExpensifySimulator", _RefusingExpensify)
    before = _live_threads()
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 1  # the demo's own failure, not "Expensify failed" (3)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: the demo failed during pull: Expensify refused"), lines
    assert "Traceback" not in result.output
    (home,) = _demo_homes(temp_root)
    assert f"the log is {home / 'logs' / 'mlconnector.log'}" in lines[0]
    assert (home / "logs" / "mlconnector.log").is_file()
    assert _threads_left(before) == set()


def test_an_unexpected_outcome_is_a_demo_failure(temp_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sample.quickbooks

    def refusing_bills(**options: Any) -> Any:
        qb = real(**options)
        qb.fail_next("BillAddRq", 3140, 'There is an invalid reference to QuickBooks Account "Travel Expense"'
                     " in the Bill.", times=10)
        return qb

    monkeypatch.setattr(sample, "quickbooks", refusing_bills)
    before = _live_threads()
    with pytest.raises(demo_module.DemoError, match=r"ended failed, not posted: .*invalid reference"):
        with demo_home() as home:
            run_demo(home)
    assert _threads_left(before) == set()
    assert home.exists()  # kept for its log


@pytest.fixture
def subprocess_env(temp_root: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONNECTOR_")}
    env.update(TMPDIR=str(temp_root), PYTHONPATH=str(REPO), COLUMNS="120")
    env["MLCONNECTOR_HOME"] = str(temp_root.parent / "home")
    yield env


def test_python_m_mlconnector_demo_in_a_real_process(subprocess_env: dict[str, str], temp_root: Path) -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "mlconnector", "demo"], env=subprocess_env, cwd=temp_root,
                          capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Posted to QuickBooks: 4 bills" in proc.stdout
    assert len(set(re.findall(r"TxnID [0-9A-F]+-\d+", proc.stdout))) == 6
    assert "Team Offsite" in proc.stdout
    assert elapsed < 30, f"the demo took {elapsed:.1f} s"
    assert _demo_homes(temp_root) == []


def test_the_result_dataclass_round_trips_to_json(temp_root: Path) -> None:
    with demo_home() as home:
        result = run_demo(home, mode=ReimbursableMode.JOURNAL)
    assert isinstance(result, DemoResult)
    data = json.loads(json.dumps(result.as_dict()))
    assert data["mode"] == "journal"
    assert set(data["timings"]) == {"setup", "pull", "post", "stamp", "collect", "stop"}
    assert 0 < data["elapsed_seconds"] < 30
