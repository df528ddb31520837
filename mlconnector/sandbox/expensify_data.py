"""Realistic seed data for the Expensify simulator: reports (template data model) and policies.

Names with apostrophes and quotes, base-62 report IDs, long digit transaction IDs, refunds and
tags with an escaped colon, so that demos and tests exercise the awkward cases by default.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

_NAMES = ("Ann O'Brien", "Bo Chen", "Chloé Dubois", "Dev Patel", "Eve \"Sparks\" Adams", "Farid Haddad")
_MERCHANTS = ("Delta Air Lines", "Hilton Garden Inn", "Uber", "Joe's Diner", "Staples", "Café Zürich", "AT&T")
_CATEGORIES = ("Travel", "Lodging", "Meals", "Office Supplies", "Phone", "Fuel/Mileage")
_TAGS = ("Sales:East", "Sales:West", "Engineering:Project X", "Ops\\:Support:Tier 1", "Marketing")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def demo_policies() -> dict[str, dict[str, Any]]:
    """Two policies with categories, tags (both shapes Expensify uses) and employees."""
    employees = [{"email": _email(name), "role": "user", "submitsTo": "boss@example.com"} for name in _NAMES]
    return {
        "0810E551A5F2A9C2": {
            "name": "Acme Corp USA",
            "categories": [{"name": c, "enabled": c != "Phone", "glCode": ""} for c in _CATEGORIES],
            "tags": [{"name": t, "enabled": True, "glCode": ""} for t in _TAGS],
            "employees": employees,
        },
        "BA5EBA11BA5EBA11": {
            "name": "Acme Corp Canada",
            "categories": [{"name": "Travel", "enabled": True}],
            "tags": [{"name": "Department", "tags": [{"name": "Sales", "enabled": True}]},
                     {"name": "Project", "tags": [{"name": "Project X", "enabled": False}]}],
            "employees": employees[:2],
        },
    }


# Company cards as the exporter's older field list names them (masked number, card ID); unverified.
_CARDS = (("4111XXXXXXXX4242", "9001"), ("5500XXXXXXXX1111", "9002"))


def _company_card(seed: int) -> dict[str, str]:
    number, card_id = _CARDS[seed % len(_CARDS)]
    return {"cardNumber": number, "cardID": card_id}


def _email(name: str) -> str:
    local = "".join(ch for ch in name.split()[0].lower() if ch.isalpha())
    return f"{local}@example.com"


def demo_report(number: int, expenses: int = 5, *, rng: random.Random | None = None,
                start: dt.date = dt.date(2026, 1, 5)) -> dict[str, Any]:
    """One realistic report (template data model): base-62 ID, refunds, escaped tags, odd text."""
    rng = rng or random.Random(number)
    name = _NAMES[number % len(_NAMES)]
    created = start + dt.timedelta(days=number % 300)
    report_id = "R00" + "".join(rng.choice(_ALPHABET) for _ in range(9))
    items = []
    total = 0
    for k in range(expenses):
        cents = rng.randint(150, 250_000)
        if k and rng.random() < 0.05:
            cents = -rng.randint(100, 5_000)  # a refund
        total += cents
        transaction_id = str(rng.randint(10**15, 10**19))
        items.append({
            "transactionID": transaction_id,
            "created": (created + dt.timedelta(days=k % 5)).isoformat(),
            "merchant": rng.choice(_MERCHANTS), "amount": cents, "modifiedAmount": 0, "currency": "USD",
            "category": rng.choice(_CATEGORIES), "tag": rng.choice(_TAGS),
            "comment": rng.choice(("", "client visit", "line1\nline2")),
            "reimbursable": rng.random() < 0.85, "billable": rng.random() < 0.2,
        })
        if not items[-1]["reimbursable"]:  # a company card, picked without drawing (the data stays the same)
            items[-1].update(_company_card(int(transaction_id)))
    return {
        "reportID": report_id, "reportName": f"{name.split()[0]}'s expenses #{number}", "status": "Approved",
        "accountEmail": _email(name), "submitter": {"fullName": name}, "currency": "USD",
        "total": total, "policyID": "0810E551A5F2A9C2", "policyName": "Acme Corp USA",
        "created": f"{created.isoformat()} 09:00:00", "submitted": f"{created.isoformat()} 17:30:00",
        "approved": f"{(created + dt.timedelta(days=2)).isoformat()} 11:00:00", "transactionList": items,
    }


def demo_reports(count: int, expenses: int = 5, *, seed: int = 7) -> list[dict[str, Any]]:
    """``count`` realistic reports with ``expenses`` expenses each, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [demo_report(i, expenses, rng=rng) for i in range(count)]
