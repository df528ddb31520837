"""From Expensify to QuickBooks over HTTP: report fields give class and customer, receipts travel as links.

The Expensify simulator speaks the real wire format (the export template asks for the configured report
fields); the pull stores and plans; the Web Connector driver posts to the schema-validating simulator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mlconnector.config import QuickBooksConfig
from mlconnector.models import PostingState
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.sandbox.quickbooks import QuickBooksSimulator
from mlconnector.services.pull import pull_reports
from mlconnector.services.queue import plan_and_queue
from mlconnector.store.postings import postings_for_report

from .qbwc_support import Clock
from .sim_helpers import FakeClock, make_client, make_config
from .test_posting_e2e import _run, serving

pytestmark = pytest.mark.slow

RECEIPT = "https://www.expensify.com/receipts/w_9f8e7d.jpg"


def _report() -> dict[str, Any]:
    return {
        "reportID": "R00Rf1Xy2Zab", "reportName": "Client visit", "status": "Approved",
        "accountEmail": "ann@example.com", "submitter": {"fullName": "Ann Smith"}, "currency": "USD",
        "total": 15000, "policyID": "0810E551A5F2A9C2", "policyName": "Acme",
        "created": "2026-03-01 09:00:00", "submitted": "2026-03-02 09:00:00", "approved": "2026-03-03 09:00:00",
        "customField": {"Department": "Engineering", "Client": "Acme Corp:Project X"},
        "transactionList": [
            {"transactionID": "111", "created": "2026-03-01", "merchant": "Uber", "amount": 5000,
             "category": "Travel Expense", "tag": "", "reimbursable": True, "billable": True,
             "receiptObject": {"url": RECEIPT}},
            {"transactionID": "222", "created": "2026-03-01", "merchant": "Staples", "amount": 10000,
             "category": "Office Supplies", "tag": "Sales", "reimbursable": True, "billable": False},
        ],
    }


def test_report_fields_and_receipts_reach_quickbooks(tmp_path: Path, reference_dir: Path) -> None:
    qb = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    clock = FakeClock()
    with ExpensifySimulator([_report()], clock=clock, not_ready_polls=0) as sim:
        base = make_config(sim)
        config = dataclasses.replace(base, quickbooks=QuickBooksConfig(
            class_report_field="Department", customer_report_field="Client"))
        with serving(tmp_path / "state.db", config, Clock()) as (url, store):
            with make_client(sim, clock) as client:
                summary = pull_reports(store, client, config)
            assert summary.new == ["R00Rf1Xy2Zab"], summary
            plan_and_queue(store, config, today=dt.date(2026, 4, 1))  # what `mlconnector pull` does next
            first = postings_for_report(store, "R00Rf1Xy2Zab")
            assert _run(url, qb).stopped == "done", [(p.state, p.reason) for p in first]
            (posting,) = postings_for_report(store, "R00Rf1Xy2Zab")
    assert posting.state is PostingState.POSTED
    (bill,) = qb.bills()
    lines = sorted(bill.lines, key=lambda ln: ln.amount)
    # No tags on the first line: the report's Department and Client; the second keeps its own tag.
    assert [(ln.account, ln.klass, ln.customer, ln.billable_status) for ln in lines] == [
        ("Travel Expense", "Engineering", "Acme Corp:Project X", "Billable"),
        ("Office Supplies", "Sales", "Acme Corp:Project X", "NotBillable"),
    ]
    assert lines[0].memo == f"Uber {RECEIPT}" and lines[1].memo == "Staples"
