"""What the demo shows: the pulled reports, QuickBooks' transactions, what was blocked, the audit trail."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from mlconnector.config import Config
from mlconnector.errors import MlConnectorError
from mlconnector.models import PostingState
from mlconnector.plan import plan_report
from mlconnector.sandbox import demo_sample as sample
from mlconnector.sandbox.expensify import ExpensifySimulator
from mlconnector.sandbox.quickbooks import QuickBooksSimulator, Txn, TxnLine
from mlconnector.sandbox.webconnector import RunSummary
from mlconnector.services.pull import PullSummary
from mlconnector.services.queue import mappings_for, settings_for
from mlconnector.store import Store
from mlconnector.store.postings import postings_for_report, postings_in
from mlconnector.store.reports import load_report


class DemoError(MlConnectorError):
    """The demo's own machinery failed (not the sample's blocked report, which is expected): exit 1."""


# ------------------------------------------------------------------------------ the result


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def pull_dict(summary: PullSummary) -> dict[str, Any]:
    data = summary.as_dict()
    return {key: data[key] for key in ("result", "counts", "new", "stamped", "stamp_error", "invalid")}


def reports(store: Store, expensify: ExpensifySimulator, config: Config) -> list[dict[str, Any]]:
    label = config.expensify.export_label
    out = []
    for item in sample.SAMPLE:
        report = load_report(store, item.report_id)
        states = sorted({p.state.value for p in postings_for_report(store, item.report_id)})
        out.append({
            "report_id": report.report_id, "name": report.name, "employee": report.submitter_name,
            "email": report.submitter_email, "total": _money(report.total), "expenses": len(report.expenses),
            "state": "/".join(states), "exported_in_expensify": label in expensify.labels(report.report_id),
        })
    return out


def _balancing(line: TxnLine, credit_account: str) -> bool:
    """The journal entry's line on the A/P (or configured credit) account, which names the vendor."""
    return line.side in ("credit", "debit") and line.account == credit_account


def _line_dict(line: TxnLine, credit_account: str) -> dict[str, Any]:
    balancing = _balancing(line, credit_account)
    return {"side": line.side, "account": line.account, "amount": _money(line.amount), "memo": line.memo,
            "class": line.klass, "customer": None if balancing else line.customer,
            "vendor": line.customer if balancing else None, "billable": line.billable_status == "Billable"}


def _accounts(txn: Txn, credit_account: str) -> list[dict[str, str]]:
    """Net amount per expense account (refunds subtracted): where the money went."""
    net: dict[str, Decimal] = {}
    for line in txn.lines:
        if txn.kind == "JournalEntry" and _balancing(line, credit_account):
            continue
        sign = -1 if line.side == "credit" else 1
        net[line.account] = net.get(line.account, Decimal("0")) + sign * line.amount
    return [{"account": name, "amount": _money(amount)} for name, amount in net.items()]


# How each QuickBooks transaction kind is called on screen (and in --json).
_TYPE_NAMES = {"Bill": "Bill", "JournalEntry": "Journal entry", "Check": "Check", "VendorCredit": "Vendor credit",
               "CreditCardCharge": "Card charge", "CreditCardCredit": "Card credit",
               "BillPaymentCheck": "Bill payment"}


def _owed(txn: Txn, credit_account: str) -> Decimal:
    """What the transaction says the company owes (or, by check, paid) the employee: its total, or the
    journal's A/P credit; a vendor credit counts against it.

    (A journal entry's own total is its debits, which count a refund's credit line twice over.)
    """
    if txn.kind == "VendorCredit":
        return -txn.total
    if txn.kind != "JournalEntry":
        return txn.total
    return sum((ln.amount if ln.side == "credit" else -ln.amount
                for ln in txn.lines if _balancing(ln, credit_account)), Decimal("0"))


def transactions(store: Store, quickbooks: QuickBooksSimulator) -> list[dict[str, Any]]:
    """Each posted posting beside the transaction QuickBooks holds for it (matched by TxnID)."""
    by_id = {t.txn_id: t for t in quickbooks.transactions}
    out = []
    for record in postings_in(store, PostingState.POSTED):
        txn = by_id.get(record.txn_id or "")
        if txn is None or record.posting is None:
            raise DemoError(f"QuickBooks has no transaction {record.txn_id} for report {record.report_id}")
        report = load_report(store, record.report_id)
        posting = record.posting
        paid = txn.kind == "BillPaymentCheck"  # its bank account pays the bills; no expense lines of its own
        out.append({
            "report_id": record.report_id, "part": "payment" if paid else f"{record.part}/{record.part_count}",
            "employee": report.submitter_name, "email": report.submitter_email, "vendor": posting.vendor,
            "type": _TYPE_NAMES.get(txn.kind, txn.kind), "ref_number": txn.ref_number,
            "txn_id": txn.txn_id, "edit_sequence": record.edit_sequence, "txn_date": txn.txn_date,
            "total": _money(_owed(txn, posting.account)), "report_total": _money(report.total),
            "credit_account": posting.account,
            "accounts": ([{"account": f"paid from {txn.bank_account}", "amount": _money(txn.total)}] if paid
                         else _accounts(txn, posting.account)),
            "lines": [_line_dict(line, posting.account) for line in txn.lines],
        })
    order = {r.report_id: n for n, r in enumerate(sample.SAMPLE)}
    # A report's payment after its bills ("payment" sorts after the "N/M" parts).
    return sorted(out, key=lambda t: (order.get(t["report_id"], len(order)), t["part"] == "payment", t["part"]))


def blocked(store: Store, config: Config, today: dt.date) -> list[dict[str, Any]]:
    """Each block of each blocked report, with the fix: planned again read-only for the structured reasons."""
    mappings, settings = mappings_for(store, config), settings_for(config)
    out = []
    for record in postings_in(store, PostingState.BLOCKED):
        report = load_report(store, record.report_id)
        blocks = plan_report(report, mappings, settings, posting_day=today).blocked
        base = {"report_id": report.report_id, "name": report.name, "employee": report.submitter_name,
                "total": _money(report.total)}
        if not blocks:  # the stored text is all there is
            out.append({**base, "expense_id": None, "field": None, "reason": record.reason or "", "fix": ""})
        for block in blocks:
            out.append({**base, "expense_id": block.expense_id, "field": block.field, "reason": block.reason,
                        "fix": block.fix})
    return out


_REQUEST_TAG = re.compile(r"<(\w+Rq)\b")


def _request_names(request: str) -> dict[str, int]:
    """``{"BillAddRq": 4}``: what one qbXML message asked QuickBooks to do."""
    names: dict[str, int] = {}
    for name in _REQUEST_TAG.findall(request):
        if name != "QBXMLMsgsRq":
            names[name] = names.get(name, 0) + 1
    return names


def run_dict(number: int, run: RunSummary) -> dict[str, Any]:
    return {
        "run": number, "authenticate": "session" if run.ticket else (run.auth_status or "?"),
        "stopped": run.stopped, "round_trips": run.round_trips, "soap_calls": len(run.calls),
        "requests": [_request_names(text) for text in run.requests], "close_message": run.close_message,
    }


def audit_trail(store: Store, report_id: str) -> dict[str, Any]:
    from mlconnector.services.audit_format import summarize

    rows = store.audit.rows(report_id=report_id)
    return {
        "report_id": report_id,
        "rows": [{"id": r.id, "at": r.at, "actor": r.actor, "event": r.event, "summary": summarize(r)} for r in rows],
    }


