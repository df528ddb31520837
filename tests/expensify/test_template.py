"""The export template against real Apache FreeMarker, and the simulator's emulation against both."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from mlconnector.expensify.parse import InvalidReport, iter_export
from mlconnector.expensify.template import (
    EXPORT_MARKER,
    STAMP_MARKER,
    export_template,
    stamp_template,
)
from mlconnector.models import Report
from mlconnector.sandbox.export_render import render_export, render_stamp
from tests.expensify import freemarker

AWKWARD: list[dict[str, Any]] = [
    {
        "reportID": "R00X9oNOn2MO", "reportName": 'Trip "to" O\'Brien\'s \\ office\nsecond line\ttab',
        "status": "Approved", "accountEmail": "ann.o'brien@example.com", "submitter": {"fullName": "Ann O'Brien"},
        "currency": "EUR", "total": 1234567, "policyID": "0810E551A5F2A9C2", "policyName": "Acme </script> \u2028",
        "created": "2026-03-01 10:00:00", "submitted": "2026-03-02 11:00:00", "approved": "2026-03-05 12:00:00",
        "reimbursed": "2026-03-09 14:00:00", "isACHReimbursed": True,
        "transactionList": [
            {"transactionID": "6720309558248016", "created": "2026-03-01", "merchant": 'Café "Zürich" 🍕',
             "amount": 1234567, "modifiedAmount": 0, "currency": "EUR", "category": "Meals & Entertainment",
             "tag": "Sales\\:East:Project X", "comment": "C:\\Temp\\new\r\nline", "reimbursable": True,
             "billable": False, "receiptObject": {"url": "https://www.expensify.com/receipts/w_1a2b.jpg"}},
            {"transactionID": "4056343049275634494", "created": "2026-03-02", "modifiedCreated": "2026-03-03",
             "merchant": "Refund", "modifiedMerchant": "Refund (edited)", "amount": -500, "modifiedAmount": -450,
             "category": "Travel", "tag": "Ops\\:Support\\:Tier 1", "reimbursable": "true", "billable": "false",
             "receiptObject": {}},
            {"transactionID": "3", "created": "2026-03-04", "amount": 1000, "convertedAmount": 1100.0,
             "currency": "GBP", "reimbursable": False, "cardNumber": "4111XXXXXXXX4242", "cardID": 9001},
            {"transactionID": "4", "created": "2026-03-05", "amount": -250, "merchant": "Delta Air Lines",
             "reimbursable": False, "cardID": "C-77"},
        ],
    },
    {"reportID": 1234567, "accountEmail": "bo@example.com", "total": "0", "transactionList": []},
    {"reportID": "R-missing-everything"},
    {"reportID": "R-dates", "accountEmail": "c@example.com", "created": dt.date(2026, 4, 1),
     "approved": dt.date(2026, 4, 2), "total": 99, "reimbursed": dt.date(2026, 4, 3), "isACHReimbursed": "false",
     "transactionList": [{"transactionID": "7", "created": "2026-04-01", "amount": "99", "reimbursable": True,
                          "billable": None}]},
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> str:
    why = freemarker.java_available()
    if why:
        pytest.skip(why)
    return freemarker.render(export_template(), AWKWARD, tmp_path_factory.mktemp("fm"))


def test_freemarker_prints_one_json_object_per_report_per_line(rendered: str) -> None:
    lines = rendered.splitlines()
    assert len(lines) == len(AWKWARD) + 1
    objects = [json.loads(line) for line in lines]
    assert objects[-1] == {"end": True, "reports": len(AWKWARD)}
    first = objects[0]
    assert first["reportName"] == AWKWARD[0]["reportName"]
    assert first["total"] == 1234567  # ?c: no grouping, even under a German locale
    assert first["expenses"][0]["tag"] == "Sales\\:East:Project X"
    assert first["expenses"][1]["amount"] == -500
    assert objects[1]["reportID"] == "1234567" and objects[1]["expenses"] == []
    assert objects[2]["expenses"] == [] and objects[2]["total"] is None


def test_freemarker_output_parses_into_the_expected_reports(rendered: str) -> None:
    items = list(iter_export(rendered.encode().splitlines()))
    first, second, third, fourth = items
    assert isinstance(first, Report)
    assert [e.tags for e in first.expenses] == [("Sales:East", "Project X"), ("Ops:Support:Tier 1",), (), ()]
    assert [str(e.amount) for e in first.expenses] == ["12345.67", "-4.50", "11.00", "-2.50"]
    assert [e.card for e in first.expenses] == ["", "", "4242", "C-77"]  # last four, else the card ID
    # receiptObject "can be empty sometimes": then no link, and no failed render.
    assert [e.receipt_url for e in first.expenses] == ["https://www.expensify.com/receipts/w_1a2b.jpg", "", "", ""]
    assert [e.reimbursable for e in first.expenses] == [True, True, False, False]
    assert first.expenses[0].comment == "C:\\Temp\\new\r\nline" and first.expenses[0].merchant.endswith("🍕")
    assert first.expenses[1].billable is False and first.expenses[1].reimbursable is True
    assert isinstance(second, Report) and second.report_id == "1234567" and second.expenses == ()
    assert isinstance(third, InvalidReport) and "no submitter email" in third.reason
    assert isinstance(fourth, Report) and fourth.created == dt.date(2026, 4, 1)
    # Reimbursement: a date (with or without a time) and ACH; a report never reimbursed has neither.
    assert (first.reimbursed, first.ach_reimbursed, first.is_reimbursed) == (dt.date(2026, 3, 9), True, True)
    assert (fourth.reimbursed, fourth.ach_reimbursed) == (dt.date(2026, 4, 3), False)
    assert (second.reimbursed, second.ach_reimbursed, second.is_reimbursed) == (None, None, False)


def test_the_simulators_emulation_matches_real_freemarker(rendered: str) -> None:
    emulated = "".join(render_export(AWKWARD))
    assert [json.loads(x) for x in emulated.splitlines()] == [json.loads(x) for x in rendered.splitlines()]
    assert list(iter_export(emulated.encode().splitlines())) == list(iter_export(rendered.encode().splitlines()))


def test_the_stamp_template_renders_in_freemarker_and_matches_the_emulation(tmp_path: Path) -> None:
    why = freemarker.java_available()
    if why:
        pytest.skip(why)
    out = freemarker.render(stamp_template(), AWKWARD, tmp_path)
    assert out.splitlines() == ["R00X9oNOn2MO", "1234567", "R-missing-everything", "R-dates"]
    assert "".join(render_stamp(AWKWARD)) == out


def test_templates_carry_the_markers_the_simulator_recognises() -> None:
    assert EXPORT_MARKER in export_template() and STAMP_MARKER in stamp_template()


def test_configured_report_fields_render_in_freemarker_and_the_emulation_alike(tmp_path: Path) -> None:
    why = freemarker.java_available()
    if why:
        pytest.skip(why)
    reports: list[dict[str, Any]] = [
        {**AWKWARD[3], "reportID": "R-fields", "customField": {"Department": "Sales & \"Ops\"",
                                                                "Client_Code": "Acme Corp:Project X"}},
        {**AWKWARD[3], "reportID": "R-none"},
    ]
    template = export_template(["Department", "Client Code", "!!"])  # names as configured
    out = freemarker.render(template, reports, tmp_path)
    first, second = (json.loads(line) for line in out.splitlines()[:2])
    assert first["reportFields"] == {"Client_Code": "Acme Corp:Project X", "Department": 'Sales & "Ops"'}
    assert second["reportFields"] == {"Client_Code": "", "Department": ""}
    emulated = "".join(render_export(reports, report_fields=["Client_Code", "Department"]))
    assert [json.loads(x) for x in emulated.splitlines()] == [json.loads(x) for x in out.splitlines()]
    parsed = next(iter(iter_export(out.encode().splitlines())))
    assert isinstance(parsed, Report) and parsed.field("Client Code") == "Acme Corp:Project X"
    assert parsed.field("Department") == 'Sales & "Ops"'
