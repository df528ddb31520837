"""The QuickBooks simulator pays bills: BillPaymentCheckAddRq/QueryRq, real open amounts, Pay Bills by hand."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from mlconnector.sandbox.quickbooks import (
    PARSE_ERROR_HRESULT,
    ProcessRequestError,
    QuickBooksSimulator,
    Txn,
)

from .qbxml_support import assert_valid, schema

GUID = "{6B29FC40-CA47-1067-B31D-00DD010662DA}"


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    return QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")


def rq(body: str, *, on_error: str = "stopOnError") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?><?qbxml version="13.0"?>'
            f'<QBXML><QBXMLMsgsRq onError="{on_error}">{body}</QBXMLMsgsRq></QBXML>')


def answers(text: str) -> list[etree._Element]:
    msgs = etree.fromstring(text.encode()).find("QBXMLMsgsRs")
    assert msgs is not None
    return list(msgs)


def answer(text: str) -> etree._Element:
    (only,) = answers(text)
    return only


def text_of(node: etree._Element, path: str) -> str:
    found: str | None = node.findtext(path)
    assert found is not None, f"no {path} in {etree.tostring(node).decode()}"
    return found


def add_bill(qb: QuickBooksSimulator, amount: str = "100.00", *, ref: str = "EXP-R00001", vendor: str = "Ann Smith",
             ap: str = "") -> str:
    """A bill added through BillAddRq; its TxnID."""
    ap_ref = f"<APAccountRef><FullName>{ap}</FullName></APAccountRef>" if ap else ""
    rs = answer(qb.process_request(rq(
        f'<BillAddRq requestID="b"><BillAdd><VendorRef><FullName>{vendor}</FullName></VendorRef>{ap_ref}'
        f"<TxnDate>2026-03-30</TxnDate><RefNumber>{ref}</RefNumber><ExpenseLineAdd><AccountRef>"
        f"<FullName>Travel Expense</FullName></AccountRef><Amount>{amount}</Amount></ExpenseLineAdd>"
        "</BillAdd></BillAddRq>")))
    assert rs.get("statusCode") == "0", rs.get("statusMessage")
    return text_of(rs, "BillRet/TxnID")


def payment(*applied: tuple[str, str], payee: str = "Ann Smith", bank: str = "Checking", ref: str = "PAY-1",
            ap: str = "", guid: str | None = GUID, rid: str = "p1") -> str:
    """A BillPaymentCheckAddRq as ml-connector sends it (RefNumber, never IsToBePrinted)."""
    ap_ref = f"<APAccountRef><FullName>{ap}</FullName></APAccountRef>" if ap else ""
    guid_el = f"<ExternalGUID>{guid}</ExternalGUID>" if guid else ""
    lines = "".join(f"<AppliedToTxnAdd><TxnID>{txn_id}</TxnID><PaymentAmount>{amount}</PaymentAmount>"
                    "</AppliedToTxnAdd>" for txn_id, amount in applied)
    return (f'<BillPaymentCheckAddRq requestID="{rid}"><BillPaymentCheckAdd>'
            f"<PayeeEntityRef><FullName>{payee}</FullName></PayeeEntityRef>{ap_ref}<TxnDate>2026-04-02</TxnDate>"
            f"<BankAccountRef><FullName>{bank}</FullName></BankAccountRef><RefNumber>{ref}</RefNumber>"
            f"<Memo>Expense report R00001</Memo>{guid_el}{lines}</BillPaymentCheckAdd></BillPaymentCheckAddRq>")


def pay(qb: QuickBooksSimulator, reference_dir: Path, body: str) -> etree._Element:
    """Send one payment request; the answer (valid against the 13.0 schema)."""
    response = qb.process_request(rq(body))
    schema(reference_dir, "13.0").assertValid(etree.fromstring(response.encode()))
    return answer(response)


def bill_ret(qb: QuickBooksSimulator, *txn_ids: str) -> list[etree._Element]:
    ids = "".join(f"<TxnID>{t}</TxnID>" for t in txn_ids)
    rs = answer(qb.process_request(rq(f'<BillQueryRq requestID="q">{ids}</BillQueryRq>')))
    assert rs.get("statusCode") == "0", rs.get("statusMessage")
    rets: list[etree._Element] = rs.findall("BillRet")
    return rets


def open_and_paid(qb: QuickBooksSimulator, txn_id: str) -> tuple[str, str]:
    (ret,) = bill_ret(qb, txn_id)
    return text_of(ret, "OpenAmount"), text_of(ret, "IsPaid")


def refused(rs: etree._Element) -> tuple[int, str]:
    assert rs.get("statusSeverity") == "Error" and len(rs) == 0
    return int(rs.get("statusCode") or 0), rs.get("statusMessage") or ""


# ------------------------------------------------------------------------------------- paying


def test_a_full_payment_leaves_the_bill_paid_with_nothing_open(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb, "100.00")
    assert open_and_paid(qb, bill) == ("100.00", "false")
    rs = pay(qb, reference_dir, payment((bill, "100.00")))
    assert (rs.get("statusCode"), rs.get("requestID")) == ("0", "p1")
    ret = rs.find("BillPaymentCheckRet")
    assert ret is not None
    assert [c.tag for c in ret] == ["TxnID", "TimeCreated", "TimeModified", "EditSequence", "TxnNumber",
                                    "PayeeEntityRef", "APAccountRef", "TxnDate", "BankAccountRef", "Amount",
                                    "RefNumber", "Memo", "IsToBePrinted", "ExternalGUID", "AppliedToTxnRet"]
    assert (text_of(ret, "PayeeEntityRef/FullName"), text_of(ret, "APAccountRef/FullName"),
            text_of(ret, "BankAccountRef/FullName")) == ("Ann Smith", "Accounts Payable", "Checking")
    assert (text_of(ret, "Amount"), text_of(ret, "RefNumber"), text_of(ret, "IsToBePrinted"),
            text_of(ret, "ExternalGUID")) == ("100.00", "PAY-1", "false", GUID)
    applied = ret.find("AppliedToTxnRet")
    assert applied is not None
    assert [(c.tag, c.text) for c in applied] == [
        ("TxnID", bill), ("TxnType", "Bill"), ("TxnDate", "2026-03-30"), ("RefNumber", "EXP-R00001"),
        ("BalanceRemaining", "0.00"), ("Amount", "100.00")]
    assert open_and_paid(qb, bill) == ("0.00", "true")
    (saved,) = qb.bill_payments()
    assert (saved.txn_id, saved.vendor, saved.ap_account, saved.bank_account) == (
        text_of(ret, "TxnID"), "Ann Smith", "Accounts Payable", "Checking")
    assert saved.applied == [(bill, Decimal("100.00"))] and saved.total == Decimal("100.00")
    assert qb.open_amount(bill) == 0


def test_one_payment_pays_two_bills(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    first, second = add_bill(qb, "100.00", ref="EXP-1"), add_bill(qb, "25.50", ref="EXP-2")
    ret = pay(qb, reference_dir, payment((first, "100.00"), (second, "25.50"))).find("BillPaymentCheckRet")
    assert ret is not None and text_of(ret, "Amount") == "125.50"
    assert [(text_of(a, "TxnID"), text_of(a, "Amount"), text_of(a, "BalanceRemaining"))
            for a in ret.findall("AppliedToTxnRet")] == [(first, "100.00", "0.00"), (second, "25.50", "0.00")]
    assert [(text_of(r, "TxnID"), text_of(r, "OpenAmount"), text_of(r, "IsPaid"))
            for r in bill_ret(qb, first, second)] == [(first, "0.00", "true"), (second, "0.00", "true")]


def test_a_partial_payment_then_the_rest(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb, "100.00")
    first = pay(qb, reference_dir, payment((bill, "40.00"), ref="PAY-1"))
    assert text_of(first, "BillPaymentCheckRet/AppliedToTxnRet/BalanceRemaining") == "60.00"
    assert open_and_paid(qb, bill) == ("60.00", "false") and qb.open_amount(bill) == Decimal("60.00")
    pay(qb, reference_dir, payment((bill, "60.00"), ref="PAY-2", guid=None))
    assert open_and_paid(qb, bill) == ("0.00", "true")
    assert [t.ref_number for t in qb.bill_payments()] == ["PAY-1", "PAY-2"]


def test_paid_status_filters_bills(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    paid, unpaid = add_bill(qb, "10.00", ref="A"), add_bill(qb, "20.00", ref="B")
    pay(qb, reference_dir, payment((paid, "10.00")))
    for status, expected in (("PaidOnly", [paid]), ("NotPaidOnly", [unpaid]), ("All", [paid, unpaid])):
        rs = answer(qb.process_request(rq(f"<BillQueryRq><PaidStatus>{status}</PaidStatus></BillQueryRq>")))
        assert [text_of(r, "TxnID") for r in rs.findall("BillRet")] == expected


# ------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("amount", ["100.01", "0.00", "-5.00"])
def test_a_payment_over_the_open_amount_or_not_positive_is_refused_and_nothing_is_saved(
    qb: QuickBooksSimulator, reference_dir: Path, amount: str
) -> None:
    bill = add_bill(qb, "100.00")
    before = list(qb.transactions)
    code, message = refused(pay(qb, reference_dir, payment((bill, amount))))
    assert code == 3210 and f'"PaymentAmount" field has an invalid value "{amount}"' in message
    assert ("more than the open balance" in message) == (amount == "100.01")
    assert qb.transactions == before and qb.bill_payments() == []
    assert open_and_paid(qb, bill) == ("100.00", "false")


def test_paying_more_than_what_is_left_after_an_earlier_payment_is_refused(
    qb: QuickBooksSimulator, reference_dir: Path
) -> None:
    bill = add_bill(qb, "100.00")
    pay(qb, reference_dir, payment((bill, "70.00"), ref="PAY-1"))
    code, message = refused(pay(qb, reference_dir, payment((bill, "30.01"), ref="PAY-2")))
    assert code == 3210 and "(30.00)" in message
    assert len(qb.bill_payments()) == 1 and qb.open_amount(bill) == Decimal("30.00")


def test_an_unknown_txn_id_is_3120_and_nothing_is_saved(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb)
    rs = pay(qb, reference_dir, payment((bill, "10.00"), ("ABCDE-1700000000", "5.00")))
    assert refused(rs) == (3120, 'Object "ABCDE-1700000000" specified in the request cannot be found.')
    assert qb.bill_payments() == [] and qb.open_amount(bill) == Decimal("100.00")


def test_a_txn_id_of_another_kind_is_not_a_bill(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    check = answer(qb.process_request(rq(
        '<CheckAddRq><CheckAdd><AccountRef><FullName>Checking</FullName></AccountRef><PayeeEntityRef><FullName>'
        "Ann Smith</FullName></PayeeEntityRef><RefNumber>101</RefNumber><ExpenseLineAdd><AccountRef><FullName>"
        "Office Supplies</FullName></AccountRef><Amount>5.00</Amount></ExpenseLineAdd></CheckAdd></CheckAddRq>")))
    check_id = text_of(check, "CheckRet/TxnID")
    assert refused(pay(qb, reference_dir, payment((check_id, "5.00"))))[0] == 3120


def test_another_vendors_bill_is_refused(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb, vendor="Bob Jones")
    code, message = refused(pay(qb, reference_dir, payment((bill, "10.00"), payee="Ann Smith")))
    assert code == 3140 and 'Entity "Ann Smith"' in message and '"Bob Jones"' in message and bill in message
    assert qb.bill_payments() == []


def test_a_bill_on_another_payables_account_is_refused(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    qb.add_account("Accounts Payable:Employees", "AccountsPayable")
    bill = add_bill(qb, ap="Accounts Payable:Employees")
    code, message = refused(pay(qb, reference_dir, payment((bill, "10.00"))))  # default: the first A/P account
    assert code == 3140 and 'Account "Accounts Payable"' in message and "Accounts Payable:Employees" in message
    assert pay(qb, reference_dir, payment((bill, "10.00"), ap="Accounts Payable:Employees")).get("statusCode") == "0"


@pytest.mark.parametrize("bank", ["Corporate Card", "Office Supplies", "Nope"])
def test_a_bank_account_that_is_not_an_active_bank_account_is_3140(
    qb: QuickBooksSimulator, reference_dir: Path, bank: str
) -> None:
    bill = add_bill(qb)
    code, message = refused(pay(qb, reference_dir, payment((bill, "10.00"), bank=bank)))
    assert code == 3140 and message.startswith(f'There is an invalid reference to QuickBooks Account "{bank}" in the '
                                               "BillPaymentCheck.")
    assert qb.bill_payments() == []


def test_an_inactive_bank_account_is_3140(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb)
    qb.set_active("account", "Checking", False)
    assert refused(pay(qb, reference_dir, payment((bill, "10.00"))))[0] == 3140


def test_the_same_bill_twice_in_one_payment_is_refused(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb)
    code, message = refused(pay(qb, reference_dir, payment((bill, "10.00"), (bill, "10.00"))))
    assert code == 3180 and "more than once" in message and qb.bill_payments() == []


def test_a_missing_payment_amount_and_unmodelled_credits_are_refused(qb: QuickBooksSimulator,
                                                                      reference_dir: Path) -> None:
    bill = add_bill(qb)
    body = payment((bill, "10.00"))
    no_amount = body.replace("<PaymentAmount>10.00</PaymentAmount>", "")
    assert refused(pay(qb, reference_dir, no_amount)) == (3150, 'There is a missing element: "PaymentAmount".')
    discount = body.replace("</PaymentAmount>", "</PaymentAmount><DiscountAmount>1.00</DiscountAmount>")
    assert refused(pay(qb, reference_dir, discount))[0] == 1030
    assert qb.bill_payments() == []


def test_a_request_without_applied_to_txn_add_is_invalid_like_any_invalid_request(qb: QuickBooksSimulator) -> None:
    add_bill(qb)
    with pytest.raises(ProcessRequestError) as info:
        qb.process_request(rq(payment()))
    assert info.value.hresult == PARSE_ERROR_HRESULT and "AppliedToTxnAdd" in qb.parse_errors[-1]
    assert qb.bill_payments() == []


def test_a_ref_number_over_11_characters_is_invalid(qb: QuickBooksSimulator) -> None:
    bill = add_bill(qb)
    with pytest.raises(ProcessRequestError):
        qb.process_request(rq(payment((bill, "10.00"), ref="EXP-R000001X")))
    assert qb.bill_payments() == []


def test_stop_on_error_keeps_earlier_payments_and_skips_later_ones(qb: QuickBooksSimulator) -> None:
    bill = add_bill(qb, "100.00")
    body = (payment((bill, "30.00"), ref="A", rid="1") + payment((bill, "80.00"), ref="B", rid="2")
            + payment((bill, "70.00"), ref="C", rid="3"))
    assert [(r.get("requestID"), r.get("statusCode")) for r in answers(qb.process_request(rq(body)))] == [
        ("1", "0"), ("2", "3210")]
    assert [t.ref_number for t in qb.bill_payments()] == ["A"]


# ------------------------------------------------------------------------------------- queries


def test_a_payment_query_by_ref_number_finds_it_with_its_external_guid(qb: QuickBooksSimulator,
                                                                        reference_dir: Path) -> None:
    none = answer(qb.process_request(rq("<BillPaymentCheckQueryRq><RefNumber>PAY-1</RefNumber>"
                                        "</BillPaymentCheckQueryRq>")))
    assert none.get("statusCode") == "1"
    bill = add_bill(qb)
    added = pay(qb, reference_dir, payment((bill, "100.00")))
    response = qb.process_request(rq('<BillPaymentCheckQueryRq requestID="q"><RefNumber>pay-1</RefNumber>'
                                     "</BillPaymentCheckQueryRq>"))
    schema(reference_dir, "13.0").assertValid(etree.fromstring(response.encode()))
    (ret,) = answer(response).findall("BillPaymentCheckRet")
    assert text_of(ret, "TxnID") == text_of(added, "BillPaymentCheckRet/TxnID")
    assert text_of(ret, "ExternalGUID") == GUID and text_of(ret, "AppliedToTxnRet/TxnID") == bill


@pytest.mark.parametrize("query", [
    "<EntityFilter><FullName>Ann Smith</FullName></EntityFilter>",
    "<TxnDateRangeFilter><FromTxnDate>2026-04-01</FromTxnDate><ToTxnDate>2026-04-30</ToTxnDate></TxnDateRangeFilter>",
])
def test_payment_queries_by_payee_or_date(qb: QuickBooksSimulator, reference_dir: Path, query: str) -> None:
    bill = add_bill(qb)
    pay(qb, reference_dir, payment((bill, "100.00")))
    rs = answer(qb.process_request(rq(f"<BillPaymentCheckQueryRq>{query}</BillPaymentCheckQueryRq>")))
    assert [text_of(r, "RefNumber") for r in rs.findall("BillPaymentCheckRet")] == ["PAY-1"]
    other = query.replace("Ann Smith", "Bob Jones").replace("2026-04-01", "2026-04-03")
    assert answer(qb.process_request(rq(f"<BillPaymentCheckQueryRq>{other}</BillPaymentCheckQueryRq>"))).get(
        "statusCode") == "1"


def test_bill_query_by_several_txn_ids_returns_those_that_exist(qb: QuickBooksSimulator) -> None:
    bill = add_bill(qb)
    some = answer(qb.process_request(rq(f"<BillQueryRq><TxnID>{bill}</TxnID><TxnID>ABCDE-1700000000</TxnID>"
                                        "</BillQueryRq>")))
    assert some.get("statusCode") == "0" and [text_of(r, "TxnID") for r in some.findall("BillRet")] == [bill]
    none = answer(qb.process_request(rq("<BillQueryRq><TxnID>ABCDE-1700000000</TxnID></BillQueryRq>")))
    assert (none.get("statusCode"), none.get("statusSeverity"), len(none)) == ("1", "Info", 0)


# ------------------------------------------------------------------------------- by hand, hooks


def test_a_bill_paid_by_hand_is_paid(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb, "100.00")
    partial = qb.pay_bill_by_hand(bill, Decimal("25.00"))
    assert open_and_paid(qb, bill) == ("75.00", "false")
    rest: Txn = qb.pay_bill_by_hand(bill)
    assert open_and_paid(qb, bill) == ("0.00", "true")
    assert qb.bill_payments() == [partial, rest]
    assert [(t.external_guid, t.ref_number, t.bank_account, t.vendor, t.total) for t in (partial, rest)] == [
        (None, "1001", "Checking", "Ann Smith", Decimal("25.00")), (None, "1002", "Checking", "Ann Smith",
                                                                      Decimal("75.00"))]
    assert not any("BillPaymentCheckAdd" in r for r in qb.requests)  # nothing went through process_request
    code, _ = refused(pay(qb, reference_dir, payment((bill, "0.01"))))
    assert code == 3210  # what ml-connector would see if it tried to pay a bill the bookkeeper paid
    found = answer(qb.process_request(rq("<BillPaymentCheckQueryRq><RefNumber>1001</RefNumber>"
                                         "</BillPaymentCheckQueryRq>")))
    assert found.find("BillPaymentCheckRet/ExternalGUID") is None


def test_paying_by_hand_refuses_what_quickbooks_would(qb: QuickBooksSimulator) -> None:
    bill = add_bill(qb, "10.00")
    with pytest.raises(ValueError, match="^3210: .*more than the open balance"):
        qb.pay_bill_by_hand(bill, Decimal("10.01"))
    with pytest.raises(ValueError, match="^3140: "):
        qb.pay_bill_by_hand(bill, bank_account="Corporate Card")
    with pytest.raises(KeyError):
        qb.pay_bill_by_hand("ABCDE-1700000000")
    with pytest.raises(KeyError):
        qb.open_amount("ABCDE-1700000000")
    assert qb.bill_payments() == []


def test_fail_next_and_hold_work_for_bill_payments(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    bill = add_bill(qb, "100.00")
    qb.fail_next("BillPaymentCheckAddRq", 3175, "The list is locked by another user.")
    assert refused(pay(qb, reference_dir, payment((bill, "10.00")))) == (3175, "The list is locked by another user.")
    assert qb.bill_payments() == []
    held = qb.hold("BillPaymentCheckAddRq", timeout=10)
    results: list[str] = []
    worker = threading.Thread(target=lambda: results.append(qb.process_request(rq(payment((bill, "10.00"))))))
    worker.start()
    assert held.wait_entered() and qb.bill_payments() == []
    held.release()
    worker.join(10)
    assert answer(results[0]).get("statusCode") == "0" and qb.open_amount(bill) == Decimal("90.00")


@pytest.mark.parametrize("country", ["US", "CA", "UK", "AU"])
def test_every_edition_takes_a_plain_bill_payment(qb: QuickBooksSimulator, reference_dir: Path,
                                                  country: str) -> None:
    qb.country = country
    bill = add_bill(qb)
    request = rq(payment((bill, "100.00")))
    assert_valid(reference_dir, request.encode(), "13.0")  # accepted by all four editions' schemas
    assert pay(qb, reference_dir, payment((bill, "100.00"))).get("statusCode") == "0"
