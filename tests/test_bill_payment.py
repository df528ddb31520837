"""Bill payments piece by piece: the plan, the qbXML (valid for every version and edition), the answers,
the config keys, payments queued only for posted bills, and replay of a failed payment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from mlconnector.config import parse_config
from mlconnector.errors import ConfigError, QbxmlError
from mlconnector.models import Line, PlannedPosting, PostingMode, PostingState, Report
from mlconnector.plan.bill_payment import PAYMENT_PART, PostedBill, bills_to_pay, payment_ref_number, plan_payment
from mlconnector.qbxml.build import build_message, write_request
from mlconnector.qbxml.parse import parse_response
from mlconnector.qbxml.txns.bill_payment import bill_payment_check_add, bills_query
from mlconnector.services.payments import queue_payments
from mlconnector.services.replay import ReplayOutcome, replay_report
from mlconnector.store import Store
from mlconnector.store.postings import add_posting, postings_for_report, transition
from mlconnector.store.reports import save_report

from . import factories
from .qbxml_support import assert_valid

D = Decimal
DAY = dt.date(2026, 4, 20)


def _bill(report_id: str, part: int, count: int, *expense_ids: str, amount: str = "10.00") -> PlannedPosting:
    lines = tuple(Line(account="Travel", amount=D(amount), expense_id=e) for e in expense_ids)
    return dataclasses.replace(factories.bill(report_id, part, count), lines=lines, ref_number=f"{report_id}-{part}")


def _report_with_card() -> tuple[Report, list[PostedBill]]:
    own1, own2 = factories.expense(1, "10.00"), factories.expense(2, "10.00")
    card = factories.expense(3, "10.00", reimbursable=False)
    report = factories.report("R00LongReport99", own1, own2, card, reimbursed=dt.date(2026, 4, 9),
                              ach_reimbursed=True, status="Reimbursed")
    bills = [PostedBill(_bill(report.report_id, 1, 3, own1.transaction_id), "TXN-1"),
             PostedBill(_bill(report.report_id, 2, 3, own2.transaction_id), "TXN-2"),
             PostedBill(dataclasses.replace(_bill(report.report_id, 3, 3, card.transaction_id), vendor="Card Bank"),
                        "TXN-3")]
    return report, bills


def test_the_payment_pays_each_employee_bill_part_in_full_and_leaves_the_card_issuers_bill_alone() -> None:
    report, bills = _report_with_card()
    payment = plan_payment(report, bills_to_pay(report, bills), bank_account="Checking", posting_day=DAY)
    assert payment is not None
    assert (payment.mode, payment.part, payment.vendor, payment.account, payment.txn_date) == (
        PostingMode.BILL_PAYMENT, PAYMENT_PART, "Ann Smith", "Checking", dt.date(2026, 4, 9))
    assert [(ln.txn_id, ln.amount, ln.account) for ln in payment.lines] == [
        ("TXN-1", D("10.00"), "Accounts Payable"), ("TXN-2", D("10.00"), "Accounts Payable")]
    assert payment.ref_number == payment_ref_number("R00LongReport99") and len(payment.ref_number) == 11
    assert payment_ref_number("R00Short") == "R00Short"
    assert "R00LongReport99" in payment.memo and "(ACH)" in payment.memo
    undated = plan_payment(dataclasses.replace(report, reimbursed=None), bills_to_pay(report, bills),
                           bank_account="Checking", posting_day=DAY)
    assert undated is not None and undated.txn_date == DAY  # no date from Expensify: the posting day


def test_vendor_credits_and_card_bills_alone_give_no_payment() -> None:
    report, bills = _report_with_card()
    credit = PostedBill(dataclasses.replace(bills[0].posting, mode=PostingMode.VENDOR_CREDIT), "TXN-9")
    assert bills_to_pay(report, [credit, bills[2]]) == []
    assert plan_payment(report, [], bank_account="Checking", posting_day=DAY) is None


@pytest.mark.parametrize("version", ["13.0", "16.0"])
def test_the_payment_and_the_bill_queries_are_valid_for_every_version_and_edition(
    reference_dir: Path, version: str
) -> None:
    report, bills = _report_with_card()
    payment = plan_payment(report, bills_to_pay(report, bills), bank_account="Checking", posting_day=DAY)
    assert payment is not None
    xml = build_message([write_request(payment, "p1", version), bills_query(["TXN-1"], "b-TXN-1", version)],
                        version=version)
    assert_valid(reference_dir, xml, version)
    text = xml.decode()
    assert "<IsToBePrinted>" not in text and f"<RefNumber>{payment.ref_number}</RefNumber>" in text
    assert text.index("<TxnDate>") < text.index("<BankAccountRef>") < text.index("<RefNumber>")


def test_a_payment_without_a_bill_txnid_or_of_nothing_is_refused_before_it_is_sent() -> None:
    report, bills = _report_with_card()
    payment = plan_payment(report, bills_to_pay(report, bills), bank_account="Checking", posting_day=DAY)
    assert payment is not None
    no_txn = dataclasses.replace(payment, lines=(dataclasses.replace(payment.lines[0], txn_id=None),))
    with pytest.raises(QbxmlError, match="no valid TxnID"):
        bill_payment_check_add(no_txn, "p1", "13.0")
    with pytest.raises(QbxmlError, match="applies to no bill"):
        bill_payment_check_add(dataclasses.replace(payment, lines=()), "p1", "13.0")
    with pytest.raises(QbxmlError, match="not a bill payment"):
        bill_payment_check_add(bills[0].posting, "p1", "13.0")


def test_bill_answers_carry_the_open_amount_and_payment_answers_their_txn() -> None:
    answer = parse_response(
        '<QBXML><QBXMLMsgsRs>'
        '<BillQueryRs requestID="b-1" statusCode="0" statusSeverity="Info" statusMessage="OK">'
        '<BillRet><TxnID>1-1</TxnID><RefNumber>R1</RefNumber><IsPaid>false</IsPaid><OpenAmount>12.50</OpenAmount>'
        '</BillRet></BillQueryRs>'
        '<BillPaymentCheckAddRs requestID="p2" statusCode="0" statusSeverity="Info" statusMessage="OK">'
        '<BillPaymentCheckRet><TxnID>9-9</TxnID><EditSequence>5</EditSequence><RefNumber>R1</RefNumber>'
        '<ExternalGUID>{A35C6998-A76B-5E26-9F93-F381DA6FE6F7}</ExternalGUID>'
        '<AppliedToTxnRet><TxnID>1-1</TxnID><TxnType>Bill</TxnType></AppliedToTxnRet></BillPaymentCheckRet>'
        '</BillPaymentCheckAddRs></QBXMLMsgsRs></QBXML>')
    bill, paid = answer.responses
    assert (bill.txns[0].open_amount, bill.txns[0].is_paid) == (D("12.50"), False)
    assert (paid.txn_id, paid.txns[0].txn_type, paid.txns[0].external_guid) == (
        "9-9", "BillPaymentCheck", "{A35C6998-A76B-5E26-9F93-F381DA6FE6F7}")


def test_config_keys_for_payments_and_watching() -> None:
    config = parse_config({"quickbooks": {"bill_payment_account": "Checking"}, "expensify": {"watch_days": 30}},
                          environ={})
    assert (config.quickbooks.bill_payment_account, config.expensify.watch_days) == ("Checking", 30)
    defaults = parse_config({}, environ={})
    assert (defaults.quickbooks.bill_payment_account, defaults.expensify.watch_days) == ("", 90)
    with pytest.raises(ConfigError, match="expensify.watch_days"):
        parse_config({"expensify": {"watch_days": -1}}, environ={})


def _stored(store: Store, *, reimbursed: bool, bill_state: PostingState) -> str:
    report = factories.report("R00Pay1", status="Reimbursed" if reimbursed else "Approved")
    save_report(store, report)
    posting = dataclasses.replace(factories.bill("R00Pay1"), lines=tuple(
        Line(account="Travel", amount=e.amount, expense_id=e.transaction_id) for e in report.expenses))
    pid = add_posting(store, posting, state=PostingState.QUEUED, report_fingerprint=report.fingerprint(), actor="test")
    if bill_state is not PostingState.QUEUED:
        transition(store, pid, PostingState.SENT, actor="test")
        transition(store, pid, PostingState.POSTED, actor="test", txn_id="TXN-1")
    return report.report_id


@pytest.mark.parametrize(("reimbursed", "bill_state", "account", "expected"), [
    (True, PostingState.POSTED, "Checking", ["R00Pay1"]),
    (True, PostingState.QUEUED, "Checking", []),  # never a payment for a bill that is not posted
    (False, PostingState.POSTED, "Checking", []),  # not reimbursed
    (True, PostingState.POSTED, "", []),  # bill payments off
])
def test_a_payment_is_queued_only_for_a_reimbursed_report_whose_bills_are_posted_and_only_once(
    store: Store, reimbursed: bool, bill_state: PostingState, account: str, expected: list[str]
) -> None:
    _stored(store, reimbursed=reimbursed, bill_state=bill_state)
    config = parse_config({"quickbooks": {"bill_payment_account": account}}, environ={})
    assert queue_payments(store, config, today=DAY, actor="test") == expected
    assert queue_payments(store, config, today=DAY, actor="test") == []  # never a second one
    payments = [p for p in postings_for_report(store, "R00Pay1") if p.mode is PostingMode.BILL_PAYMENT]
    assert len(payments) == len(expected)


def test_replay_queues_a_failed_payment_again_and_leaves_the_posted_bill_alone(store: Store) -> None:
    _stored(store, reimbursed=True, bill_state=PostingState.POSTED)
    config = parse_config({"quickbooks": {"bill_payment_account": "Checking"}}, environ={})
    queue_payments(store, config, today=DAY, actor="test")
    (payment,) = [p for p in postings_for_report(store, "R00Pay1") if p.mode is PostingMode.BILL_PAYMENT]
    transition(store, payment.id, PostingState.SENT, actor="test")
    transition(store, payment.id, PostingState.FAILED, actor="test", reason="QuickBooks error 3140: bank account")
    result = replay_report(store, config, "R00Pay1", today=DAY, actor="test")
    states = {p.mode: p.state for p in postings_for_report(store, "R00Pay1")}
    assert result.outcome is ReplayOutcome.QUEUED and result.queued == 1
    assert states == {PostingMode.BILL: PostingState.POSTED, PostingMode.BILL_PAYMENT: PostingState.QUEUED}
    assert json.loads(json.dumps(result.as_dict()))["queued"] == 1


def test_replay_force_drops_an_unsent_payment_and_plans_it_again_from_the_bills_as_they_are_then(
    store: Store
) -> None:
    _stored(store, reimbursed=True, bill_state=PostingState.POSTED)
    config = parse_config({"quickbooks": {"bill_payment_account": "Checking"}}, environ={})
    assert queue_payments(store, config, today=DAY, actor="test") == ["R00Pay1"]
    result = replay_report(store, config, "R00Pay1", force=True, today=DAY, actor="test")
    assert result.outcome is ReplayOutcome.RECHECK
    modes = {p.mode: p.state for p in postings_for_report(store, "R00Pay1")}
    assert modes == {PostingMode.BILL: PostingState.IN_DOUBT}  # the payment naming the old TxnID is gone
    assert queue_payments(store, config, today=DAY, actor="test") == []  # never for a bill not posted
    (bill,) = postings_for_report(store, "R00Pay1")
    transition(store, bill.id, PostingState.POSTED, actor="test", txn_id="TXN-NEW")  # recovery wrote it again
    assert queue_payments(store, config, today=DAY, actor="test") == ["R00Pay1"]
    (payment,) = [p for p in postings_for_report(store, "R00Pay1") if p.mode is PostingMode.BILL_PAYMENT]
    assert payment.posting is not None and [ln.txn_id for ln in payment.posting.lines] == ["TXN-NEW"]


def test_reports_that_can_never_get_a_payment_stop_being_looked_for(store: Store) -> None:
    from mlconnector.store.payments import settle_hopeless

    report = factories.report("R00Jnl1", status="Reimbursed")
    save_report(store, report)
    journal = dataclasses.replace(factories.bill("R00Jnl1"), mode=PostingMode.JOURNAL)
    add_posting(store, journal, state=PostingState.QUEUED, report_fingerprint=report.fingerprint(), actor="test")
    pending = "SELECT payment_pending FROM reports WHERE report_id = ?"
    assert store.conn.execute(pending, ("R00Jnl1",)).fetchone()[0] == 1
    with store.atomic():
        assert settle_hopeless(store) == 1
    assert store.conn.execute(pending, ("R00Jnl1",)).fetchone()[0] == 0
