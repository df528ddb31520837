"""Receipt links: the receipt's address ends each line's memo (QuickBooks Desktop has no attachments)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from mlconnector.expensify.parse import receipt_url
from mlconnector.mapping.rules import Mappings
from mlconnector.models import ReimbursableMode
from mlconnector.plan import PlanSettings, plan_report
from mlconnector.store import Store
from mlconnector.store.reports import load_report, save_report

from .factories import expense, report

DAY = dt.date(2026, 4, 1)
ANN = Mappings.compile([("employee", "ann@example.com", "Ann Smith")])
URL = "https://www.expensify.com/receipts/w_1a2b.jpg"


def test_each_line_memo_ends_with_its_receipt_unless_receipt_links_is_off() -> None:
    r = report("R1", expense(1, "40.00", receipt_url=URL), expense(2, "10.00"))
    (bill,) = plan_report(r, ANN, PlanSettings(), posting_day=DAY).postings
    assert [ln.memo for ln in bill.lines] == [f"Merchant 1 {URL}", "Merchant 2"]
    (je,) = plan_report(r, ANN, PlanSettings(mode=ReimbursableMode.JOURNAL), posting_day=DAY).postings
    assert je.lines[0].memo == f"R1: Merchant 1 {URL}"
    (plain,) = plan_report(r, ANN, PlanSettings(receipt_links=False), posting_day=DAY).postings
    assert [ln.memo for ln in plain.lines] == ["Merchant 1", "Merchant 2"]


def test_a_receipt_is_kept_with_the_expense_but_is_no_edit_of_the_report(store: Store) -> None:
    r = report("R1", expense(1, "40.00"))
    with_receipt = dataclasses.replace(r, expenses=(dataclasses.replace(r.expenses[0], receipt_url=URL),))
    assert with_receipt.fingerprint() == r.fingerprint()  # attached after posting: not "changed after posting"
    save_report(store, with_receipt)
    assert load_report(store, "R1").expenses[0].receipt_url == URL


def test_only_plain_http_addresses_are_taken_as_receipts() -> None:
    assert receipt_url({"receiptURL": f" {URL} "}) == URL
    assert [receipt_url({"receiptURL": v}) for v in ("javascript:alert(1)", "https://a b", 5, "")] == ["", "", "", ""]
