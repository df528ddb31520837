"""The company file's own settings, as the Web Connector reports them, end to end over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.sandbox.webconnector import WebConnector
from mlconnector.store.postings import postings_for_report

from .qbwc_support import PASSWORD, USER
from .test_posting_e2e import SAMPLE, _config, _queue, _run, serving

pytestmark = pytest.mark.slow


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def test_with_class_tracking_off_only_class_carrying_reports_wait_and_status_shows_the_company_file(
    home: Path, qb: QuickBooksSimulator, cli: CliRunner
) -> None:
    from .test_posting_e2e import _expense, _report

    qb.class_tracking = False
    plain = _report("R00NoCls", "bob@example.com", _expense(9, "20.00", "Office Supplies", tags=()))
    config = _config("bill")
    with serving(home / "state.db", config) as (url, store):
        _queue(store, config, (*SAMPLE, plain))
        summary = _run(url, qb)
        states = {r: [p.state.value for p in postings_for_report(store, r)] for r in ("R00Ann1", "R00NoCls")}
        reason = postings_for_report(store, "R00Ann1")[0].reason or ""
    assert summary.stopped == "done", summary
    assert states == {"R00Ann1": ["blocked"], "R00NoCls": ["posted"]}
    assert "class tracking is off in this QuickBooks company file" in reason and "class_tag_level = 0" in reason
    assert [b.ref_number for b in qb.bills()] == ["R00NoCls"]
    company = json.loads(cli.invoke(app, ["status", "--json"]).stdout)["quickbooks_company"]
    assert company["class_tracking"] is False and company["company_name"] == "Acme Corp"


def test_a_garbage_host_company_preferences_answer_does_not_stop_posting(tmp_path: Path, qb: QuickBooksSimulator) -> None:
    config = _config("bill")
    with serving(tmp_path / "state.db", config) as (url, store):
        _queue(store, config, SAMPLE[:1])
        summary = WebConnector(url, USER, PASSWORD, quickbooks=qb.process_request,
                               hcp_response="<QBXML><not-closed").run()
    assert summary.stopped == "done", summary
    assert [b.ref_number for b in qb.bills()] == ["R00Ann1"]
