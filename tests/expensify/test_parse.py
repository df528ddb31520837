from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from mlconnector.errors import ExpensifyRetriableError
from mlconnector.expensify.parse import (
    InvalidReport,
    iter_export,
    parse_report,
    split_tag_levels,
)
from mlconnector.models import Report
from mlconnector.sandbox.export_render import render_export


def _report(**overrides: Any) -> dict[str, Any]:
    expense = {
        "transactionID": "6720309558248016", "created": "2026-03-01", "merchant": "Uber", "amount": 1250,
        "modifiedAmount": 0, "currency": "USD", "category": "Travel", "tag": "Sales:East", "comment": "",
        "reimbursable": True, "billable": False,
    }
    data: dict[str, Any] = {
        "reportID": "R00X9oNOn2MO", "reportName": "March", "status": "Approved", "accountEmail": "ann@example.com",
        "submitter": {"fullName": "Ann"}, "currency": "USD", "total": 1250, "policyID": "0810E551A5F2A9C2",
        "created": "2026-03-01 09:00:00", "approved": "2026-03-04 10:00:00", "transactionList": [expense],
    }
    data.update(overrides)
    return data


def _lines(*reports: dict[str, Any]) -> list[bytes]:
    return [line.encode() for line in render_export(reports)]


@pytest.mark.parametrize(
    ("tag", "levels"),
    [
        ("", ()),
        ("Sales", ("Sales",)),
        ("Sales:East", ("Sales", "East")),
        ("Sales\\:East:Project X", ("Sales:East", "Project X")),
        ("a\\:b\\:c", ("a:b:c",)),
        ("Ops : Tier 1 ", ("Ops", "Tier 1")),
        ("C:\\Temp", ("C", "\\Temp")),
    ],
)
def test_tags_split_on_unescaped_colons_only(tag: str, levels: tuple[str, ...]) -> None:
    assert split_tag_levels(tag) == levels


def test_a_valid_report_becomes_a_model_with_decimal_money_and_opaque_ids() -> None:
    (report,) = list(iter_export(_lines(_report(reportID="0012345"))))
    assert isinstance(report, Report)
    assert report.report_id == "0012345"  # leading zeros kept: IDs are text
    assert report.total == Decimal("12.50") and report.approved == dt.date(2026, 3, 4)
    (expense,) = report.expenses
    assert expense.amount == Decimal("12.50") and isinstance(expense.amount, Decimal)
    assert expense.transaction_id == "6720309558248016" and expense.tags == ("Sales", "East")
    assert expense.reimbursable is True and expense.billable is False


def test_refunds_stay_negative_and_the_effective_amount_follows_expensifys_idiom() -> None:
    expenses = [
        {"transactionID": "1", "created": "2026-03-01", "amount": -500, "reimbursable": True},
        {"transactionID": "2", "created": "2026-03-01", "amount": 1000, "modifiedAmount": 900, "reimbursable": True},
        {"transactionID": "3", "created": "2026-03-01", "amount": 1000, "modifiedAmount": 900,
         "convertedAmount": 1234, "currency": "EUR", "reimbursable": "true"},
        {"transactionID": "4", "created": "2026-03-01", "modifiedCreated": "2026-03-09", "amount": "700",
         "merchant": "A", "modifiedMerchant": "B", "reimbursable": False},
    ]
    (report,) = list(iter_export(_lines(_report(transactionList=expenses, total=None))))
    assert isinstance(report, Report)
    amounts = [e.amount for e in report.expenses]
    assert amounts == [Decimal("-5.00"), Decimal("9.00"), Decimal("12.34"), Decimal("7.00")]
    assert report.expenses[2].currency == "USD"  # the converted amount is in the report's currency
    assert report.expenses[3].date == dt.date(2026, 3, 9) and report.expenses[3].merchant == "B"
    assert report.total == sum(amounts)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"reportID": ""}, "no reportID"),
        ({"accountEmail": None}, "no submitter email"),
        ({"approved": "04/03/2026"}, "approved is not a date"),
        ({"total": "12.50"}, "total is not a whole number of cents"),
        ({"transactionList": [{"created": "2026-03-01", "amount": 1, "reimbursable": True}]}, "no transactionID"),
        ({"transactionList": [{"transactionID": "9", "created": "2026-13-01", "amount": 1, "reimbursable": True}]},
         "expense 9 date is not a date"),
        ({"transactionList": [{"transactionID": "9", "created": "2026-03-01", "reimbursable": True}]},
         "expense 9 has no amount"),
        ({"transactionList": [{"transactionID": "9", "created": "2026-03-01", "amount": 1}]},
         "expense 9 reimbursable is not true or false"),
        ({"transactionList": [{"transactionID": "9", "created": "2026-03-01", "amount": 1.5, "reimbursable": True}]},
         "not a whole number of cents"),
    ],
)
def test_an_invalid_report_yields_its_reason_instead_of_crashing(change: dict[str, Any], reason: str) -> None:
    good = _report(reportID="R1")
    bad = _report(reportID="R2", **{k: v for k, v in change.items() if k != "reportID"})
    if "reportID" in change:
        bad["reportID"] = change["reportID"]
    items = list(iter_export(_lines(good, bad, _report(reportID="R3"))))
    assert [type(i).__name__ for i in items] == ["Report", "InvalidReport", "Report"]
    invalid = items[1]
    assert isinstance(invalid, InvalidReport) and reason in invalid.reason


def test_a_line_that_is_not_json_is_invalid_and_keeps_its_report_id_when_readable() -> None:
    lines = [b'{"reportID":"R9","reportName":"broken\n', b'{"end":true,"reports":1}\n']
    (item,) = list(iter_export(lines))
    assert item == InvalidReport("R9", "line 1 of the export is not valid JSON")
    assert parse_report([1, 2]) == InvalidReport("", "the line is not a JSON object")


def test_a_truncated_export_is_a_retriable_error() -> None:
    lines = _lines(_report(reportID="R1"), _report(reportID="R2"))
    with pytest.raises(ExpensifyRetriableError, match="ended early after 1 reports"):
        list(iter_export(lines[:1]))
    with pytest.raises(ExpensifyRetriableError, match="announced 3 reports but held 2"):
        list(iter_export([*lines[:2], b'{"end":true,"reports":3}\n']))


def test_an_empty_export_is_just_the_trailer() -> None:
    assert list(iter_export(_lines())) == []


def test_parsing_is_lazy_so_memory_does_not_grow_with_the_file() -> None:
    pulled: list[int] = []

    def source() -> Iterator[bytes]:
        for n in range(1_000_000):
            pulled.append(n)
            yield json.dumps(_report(reportID=f"R{n}")).replace('"transactionList"', '"expenses"').encode()

    items = iter_export(source())
    first = next(items)
    assert isinstance(first, InvalidReport) or first.report_id == "R0"
    assert len(pulled) == 1
