"""The ``card`` and ``merchant`` mapping kinds through ``map set|unset|list|import|export|check``, and the
expense's card through the state file."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.config import parse_config
from mlconnector.models import Expense, Report
from mlconnector.services.mappings import set_mapping
from mlconnector.services.queue import check_mappings
from mlconnector.store import Store
from mlconnector.store.reports import load_report, save_report

CARD = Expense("T1", dt.date(2026, 3, 1), "Corner Cafe", Decimal("12.00"), "Meals", reimbursable=False, card="4242")
REPORT = Report("R1", "Cards", "ann@example.com", "Approved", "USD", Decimal("12.00"), (CARD,))
CARDS_CONFIG = parse_config({"quickbooks": {"non_reimbursable": "credit_card", "card_account": "Corporate Card"}},
                            environ={})


def test_the_card_is_saved_and_loaded_back_and_keeps_the_fingerprint(store: Store) -> None:
    save_report(store, REPORT)
    loaded = load_report(store, "R1")
    assert loaded.expenses[0].card == "4242"
    assert loaded.fingerprint() == REPORT.fingerprint()
    plain = Report("R2", "Own", "ann@example.com", "Approved", "USD", Decimal("1.00"),
                   (Expense("T2", dt.date(2026, 3, 1), "M", Decimal("1.00"), "Meals"),))
    save_report(store, plain)
    assert load_report(store, "R2").expenses[0].card == ""


def test_map_check_lists_cards_and_merchants_when_they_post_as_card_charges(store: Store) -> None:
    save_report(store, REPORT)
    set_mapping(store, "card", "4242", "Amex", actor="t")
    check = check_mappings(store, CARDS_CONFIG)
    names = {(n.kind.value, n.source): n for n in check.names}
    assert names[("card", "4242")].target == "Amex"
    merchant = names[("merchant", "Corner Cafe")]
    assert merchant.blocks and merchant.reports == ("R1",) and "map set merchant" in merchant.fix
    set_mapping(store, "merchant", "corner cafe", "Corner Cafe LLC", actor="t")  # merchants compare ignoring case
    assert check_mappings(store, CARDS_CONFIG).blocking == ()
    excluded = check_mappings(store, parse_config({}, environ={}))
    assert not {n.kind.value for n in excluded.names} & {"card", "merchant"}


@pytest.fixture
def runner(home: Path) -> CliRunner:
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--non-interactive"], env={"MLCONNECTOR_QBWC_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    return runner


def test_map_set_list_export_import_and_unset_card_and_merchant(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(app, ["map", "set", "card", "4242", "Amex Card"]).exit_code == 0
    result = runner.invoke(app, ["map", "set", "merchant", "UBER *TRIP", "Uber Technologies"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["map", "list", "--json"]).output)
    rows = sorted((r["kind"], r["source"], r["target"]) for r in listed)
    # merchants, like emails, are stored as they compare: ignoring case
    assert rows == [("card", "4242", "Amex Card"), ("merchant", "uber *trip", "Uber Technologies")]
    for fmt in ("csv", "toml"):
        out = tmp_path / f"maps.{fmt}"
        assert runner.invoke(app, ["map", "export", "-o", str(out)]).exit_code == 0
        assert runner.invoke(app, ["map", "unset", "card", "4242"]).exit_code == 0
        assert runner.invoke(app, ["map", "unset", "merchant", "UBER *TRIP"]).exit_code == 0
        assert json.loads(runner.invoke(app, ["map", "list", "--json"]).output) == []
        result = runner.invoke(app, ["map", "import", str(out)])
        assert result.exit_code == 0, result.output
        again = json.loads(runner.invoke(app, ["map", "list", "--json"]).output)
        assert sorted((r["kind"], r["source"], r["target"]) for r in again) == rows
    assert runner.invoke(app, ["map", "check"]).exit_code in (0, 1)


def test_card_numbers_arriving_for_a_posted_report_are_recorded_and_are_not_a_change(store: Store) -> None:
    from dataclasses import replace

    from mlconnector.models import PostingState
    from mlconnector.store.postings import add_posting, transition
    from mlconnector.store.reports import SaveOutcome

    from .factories import bill

    before = replace(REPORT, report_id="R00001", expenses=(replace(CARD, card=""),))  # pulled before 0008
    save_report(store, before)
    pid = add_posting(store, bill(), state=PostingState.QUEUED, report_fingerprint="x", actor="t")
    transition(store, pid, PostingState.SENT, actor="t")
    after = replace(before, expenses=(CARD,))
    assert save_report(store, after) is SaveOutcome.UNCHANGED
    assert load_report(store, "R00001").expenses[0].card == "4242"
    assert save_report(store, after) is SaveOutcome.UNCHANGED
    edited = replace(after, expenses=(replace(CARD, amount=Decimal("13.00")),), total=Decimal("13.00"))
    assert save_report(store, edited) is SaveOutcome.CHANGED_AFTER_POSTING


def test_the_expensify_simulator_exports_company_cards_with_their_numbers_and_refunds() -> None:
    from mlconnector.expensify.parse import iter_export
    from mlconnector.sandbox.expensify_data import demo_reports
    from mlconnector.sandbox.export_render import render_export

    raw = demo_reports(60, 8)
    parsed = [r for r in iter_export("".join(render_export(raw)).encode().splitlines()) if isinstance(r, Report)]
    expenses = [e for r in parsed for e in r.expenses]
    cards = [e for e in expenses if not e.reimbursable]
    assert cards and {e.card for e in cards} == {"4242", "1111"}
    assert all(e.card == "" for e in expenses if e.reimbursable)
    assert any(e.amount < 0 for e in cards)  # card refunds
