"""The sample company of ``mlconnector demo``: Acme Corp's expense reports and its QuickBooks file.

Four employees, six approved reports (one of them a company-card purchase), in Expensify's template data model (amounts in cents, tags
with levels split on ``:``; the ``\\:`` in a customer:job tag is a literal colon). The QuickBooks
company holds what those reports need, matched the way a real installation matches it with no
mapping at all: categories by account name, level-1 tags by class name, level-2 tags by
customer:job name, submitters by the vendor's e-mail. One thing is missing on purpose: there is no
"Team Offsite" account, so Dev Patel's report blocks and shows its fix.

Dates are relative to the day the demo runs, so the first pull's window always finds them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mlconnector.sandbox.expensify import SimReport
from mlconnector.sandbox.quickbooks import QuickBooksSimulator

POLICY_ID = "4F2C1A9B7D3E5680"
POLICY_NAME = "Acme Corp USA"
COMPANY_NAME = "Acme Corp"
BLOCKING_CATEGORY = "Team Offsite"
START_DAYS_AGO = 60  # expensify.start_date of the demo's config

GLOBEX_JOB = "Globex Corporation:Website Redesign"
INITECH_JOB = "Initech:Data Migration"


@dataclass(frozen=True)
class Employee:
    """A submitter in Expensify, who is a vendor (with the same e-mail) in QuickBooks."""

    name: str
    email: str


ANN = Employee("Ann O'Brien", "ann.obrien@example.com")
BO = Employee("Bo Chen", "bo.chen@example.com")
CHLOE = Employee("Chloé Dubois", "chloe.dubois@example.com")
DEV = Employee("Dev Patel", "dev.patel@example.com")
EMPLOYEES = (ANN, BO, CHLOE, DEV)

# (days ago, merchant, cents, category, tag, comment, billable)
_Expense = tuple[int, str, int, str, str, str, bool]


@dataclass(frozen=True)
class SampleReport:
    """One report of the sample, before it is put in Expensify's shape."""

    report_id: str
    name: str
    employee: Employee
    submitted_days_ago: int
    expenses: tuple[_Expense, ...]
    state: str = "APPROVED"
    card_number: str = ""  # set: the expenses were paid with this company card (not owed to the employee)

    @property
    def total_cents(self) -> int:
        """What the report adds up to (refunds count negative)."""
        return sum(e[2] for e in self.expenses)


def _tag(*levels: str) -> str:
    return ":".join(level.replace(":", "\\:") for level in levels)


SAMPLE = (
    SampleReport("R00Lk3Nw8xQa", "Boston trip: Globex kickoff", ANN, 12, (
        (16, "Delta Air Lines", 41230, "Travel Expense", _tag("Sales", GLOBEX_JOB), "BOS round trip", True),
        (15, "Hilton Boston Back Bay", 38900, "Travel Expense", _tag("Sales", GLOBEX_JOB), "2 nights", True),
        (15, "Legal Sea Foods", 18640, "Meals and Entertainment", _tag("Sales", GLOBEX_JOB),
         "Dinner with the Globex team", False),
        (14, "Uber", 2375, "Travel Expense", _tag("Sales"), "Hotel to Logan airport", False),
    )),
    SampleReport("R00Ps7Tb2eHc", "Team supplies", BO, 10, (
        (13, "Staples", 6499, "Office Supplies", _tag("Engineering"), "Toner and paper", False),
        (12, "Staples", -1500, "Office Supplies", _tag("Engineering"), "Refund: returned toner", False),
        (11, "Amazon", 12900, "Office Supplies", _tag("Engineering"), "USB-C docks", False),
    ), state="REIMBURSED"),
    SampleReport("R00Fm4Jv6uZd", "Initech onsite", CHLOE, 8, (
        (10, "103.5 mi @ $0.67 / mi", 6935, "Automobile Expense", _tag("Engineering", INITECH_JOB),
         "Office to Initech HQ and back", True),
        (10, "SP+ Parking", 1800, "Automobile Expense", _tag("Engineering", INITECH_JOB), "", True),
        (10, "Panera Bread", 3210, "Meals and Entertainment", _tag("Engineering"), "Working lunch", False),
    )),
    SampleReport("R00Wq9Dy5rKe", "Q3 team offsite", DEV, 7, (
        (9, "Lake Tahoe Lodge", 125000, BLOCKING_CATEGORY, _tag("Marketing"), "Venue deposit", False),
        (9, "Whole Foods", 21060, "Meals and Entertainment", _tag("Marketing"), "Offsite lunch", False),
    )),
    SampleReport("R00Hn2Gs7cXf", "Phone plan", ANN, 6, (
        (20, "AT&T", 8500, "Telephone Expense", _tag("Sales"), "Mobile plan", False),
    )),
    SampleReport("R00Cc5Vx1mPz", "Company card: printer", BO, 5, (
        (6, "Staples", 24999, "Office Supplies", _tag("Engineering"), "Laser printer", False),
    ), card_number="4111XXXXXXXX1979"),
)
CARD_REPORT_ID = "R00Cc5Vx1mPz"  # posted as a credit-card charge (non_reimbursable = "credit_card")
CARD_ACCOUNT = "Corporate Card"

BLOCKED_REPORT_ID = "R00Wq9Dy5rKe"
FEATURED_REPORT_ID = "R00Lk3Nw8xQa"  # whose audit trail the demo shows: billable lines, class and job


def _stamp(day: dt.date, time: str) -> str:
    return f"{day.isoformat()} {time}"


def expensify_report(report: SampleReport, today: dt.date) -> dict[str, Any]:
    """One sample report as Expensify's template data model holds it."""
    submitted = today - dt.timedelta(days=report.submitted_days_ago)
    created = today - dt.timedelta(days=max(e[0] for e in report.expenses))
    items = [
        {
            "transactionID": f"{7204431500000000000 + n * 7919 + sum(map(ord, report.report_id))}",
            "created": (today - dt.timedelta(days=days_ago)).isoformat(),
            "merchant": merchant, "amount": cents, "modifiedAmount": 0, "currency": "USD",
            "category": category, "tag": tag, "comment": comment, "reimbursable": not report.card_number,
            "billable": billable, **({"cardNumber": report.card_number} if report.card_number else {}),
        }
        for n, (days_ago, merchant, cents, category, tag, comment, billable) in enumerate(report.expenses, 1)
    ]
    return {
        "reportID": report.report_id, "reportName": report.name, "status": report.state.title(),
        "accountEmail": report.employee.email, "submitter": {"fullName": report.employee.name}, "currency": "USD",
        "total": report.total_cents, "policyID": POLICY_ID, "policyName": POLICY_NAME,
        "created": _stamp(created, "09:12:44"), "submitted": _stamp(submitted, "17:03:10"),
        "approved": _stamp(submitted + dt.timedelta(days=2), "10:41:27"), "transactionList": items,
        # Reimbursed by ACH the day after approval: with bill_payment_account set its bill is paid in QuickBooks.
        **({"reimbursed": _stamp(submitted + dt.timedelta(days=3), "08:30:00"), "isACHReimbursed": True}
           if report.state == "REIMBURSED" else {}),
    }


def expensify_reports(today: dt.date) -> list[SimReport]:
    """Every sample report, in Expensify's shape and state (approved or reimbursed)."""
    return [SimReport(expensify_report(r, today), state=r.state) for r in SAMPLE]


def policies() -> dict[str, dict[str, Any]]:
    """The sample policy: its categories (one with no QuickBooks account), tags and employees."""
    categories = sorted({e[3] for r in SAMPLE for e in r.expenses})
    tags = sorted({e[4] for r in SAMPLE for e in r.expenses})
    return {
        POLICY_ID: {
            "name": POLICY_NAME,
            "categories": [{"name": c, "enabled": True, "glCode": ""} for c in categories],
            "tags": [{"name": t, "enabled": True, "glCode": ""} for t in tags],
            "employees": [{"email": e.email, "role": "user", "submitsTo": "finance@example.com"} for e in EMPLOYEES],
        }
    }


def quickbooks(**options: Any) -> QuickBooksSimulator:
    """Acme Corp's QuickBooks company file: accounts, vendors (with the employees' e-mails), classes, jobs."""
    sim = QuickBooksSimulator(company_name=COMPANY_NAME, **options)
    sim.add_account("Checking", "Bank")
    sim.add_account(CARD_ACCOUNT, "CreditCard")
    sim.add_account("Accounts Payable", "AccountsPayable")
    for name in ("Travel Expense", "Meals and Entertainment", "Office Supplies", "Automobile Expense",
                 "Telephone Expense", "Rent Expense"):
        sim.add_account(name)
    for employee in EMPLOYEES:
        sim.add_vendor(employee.name, email=employee.email)
    sim.add_vendor("Staples")
    sim.add_vendor("AT&T", email="billing@att.example.com")
    for name in ("Sales", "Engineering", "Marketing"):
        sim.add_class(name)
    for name in ("Globex Corporation", GLOBEX_JOB, "Initech", INITECH_JOB):
        sim.add_customer(name)
    return sim


__all__ = [
    "BLOCKED_REPORT_ID", "BLOCKING_CATEGORY", "CARD_ACCOUNT", "CARD_REPORT_ID", "COMPANY_NAME", "EMPLOYEES", "FEATURED_REPORT_ID", "SAMPLE",
    "START_DAYS_AGO", "Employee", "SampleReport", "expensify_report", "expensify_reports", "policies", "quickbooks",
]
