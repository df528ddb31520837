"""Small builders for reports and postings used across tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from mlconnector.models import Expense, Line, PlannedPosting, PostingMode, Report


def expense(n: int = 1, amount: str = "12.50", **overrides: object) -> Expense:
    values: dict[str, object] = {
        "transaction_id": f"T{n:04d}", "date": dt.date(2026, 3, n % 28 + 1), "merchant": f"Merchant {n}",
        "amount": Decimal(amount), "category": "Travel", "tags": ("Sales", "Acme:Project X"),
    }
    values.update(overrides)
    return Expense(**values)  # type: ignore[arg-type]


def report(report_id: str = "R00001", *expenses: Expense, **overrides: object) -> Report:
    items = expenses or (expense(1), expense(2, "7.25"))
    values: dict[str, object] = {
        "report_id": report_id, "name": f"Trip {report_id}", "submitter_email": "ann@example.com",
        "status": "Approved", "currency": "USD", "total": sum((e.amount for e in items), Decimal("0.00")),
        "expenses": items, "approved": dt.date(2026, 3, 30),
    }
    values.update(overrides)
    return Report(**values)  # type: ignore[arg-type]


def bill(report_id: str = "R00001", part: int = 1, part_count: int = 1) -> PlannedPosting:
    return PlannedPosting(
        report_id=report_id, part=part, part_count=part_count, mode=PostingMode.BILL, ref_number=report_id,
        txn_date=dt.date(2026, 3, 30), vendor="Ann Smith", account="Accounts Payable",
        lines=(Line(account="Travel", amount=Decimal("12.50"), memo="Merchant 1", klass="Sales"),
               Line(account="Meals", amount=Decimal("-2.00"), memo="refund")),
    )
