"""The QuickBooks simulator: lists, adds, queries, reference checks, onError and error recovery."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from mlconnector.sandbox.quickbooks import (
    PARSE_ERROR_HRESULT,
    ProcessRequestError,
    QuickBooksSimulator,
)


@pytest.fixture
def qb(reference_dir: Path) -> QuickBooksSimulator:
    sim = QuickBooksSimulator.seeded(schema_dir=reference_dir / "qbxml")
    sim.add_vendor("Jane Employee", email="jane@example.com")
    sim.add_account("Travel Expense:Taxi", list_id="80000012-1234567890")
    return sim


@pytest.fixture(scope="module")
def schema130(reference_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(reference_dir / "qbxml" / "v130" / "qbxmlops130.xsd")))


def rq(body: str, *, on_error: str = "stopOnError", attrs: str = "", version: str = "13.0") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><?qbxml version="{version}"?>'
            f'<QBXML><QBXMLMsgsRq onError="{on_error}"{attrs}>{body}</QBXMLMsgsRq></QBXML>')


def rs(text: str) -> etree._Element:
    root = etree.fromstring(text.encode())
    msgs = root.find("QBXMLMsgsRs")
    assert msgs is not None
    return msgs


def bill(ref: str = "EXP-R00001", *, account: str = "Travel Expense", amount: str = "10.00", rid: str = "b1",
         extra_line: str = "") -> str:
    return (f'<BillAddRq requestID="{rid}"><BillAdd><VendorRef><FullName>Ann Smith</FullName></VendorRef>'
            f"<TxnDate>2026-03-30</TxnDate><RefNumber>{ref}</RefNumber>"
            f"<ExpenseLineAdd><AccountRef><FullName>{account}</FullName></AccountRef><Amount>{amount}</Amount>"
            f"<Memo>Taxi</Memo><ClassRef><FullName>Sales</FullName></ClassRef></ExpenseLineAdd>{extra_line}"
            "</BillAdd></BillAddRq>")


def journal(debit: str = "20.00", credit: str = "20.00", ref: str = "R00002") -> str:
    return ('<JournalEntryAddRq requestID="j1"><JournalEntryAdd><TxnDate>2026-03-30</TxnDate>'
            f"<RefNumber>{ref}</RefNumber>"
            "<JournalDebitLine><AccountRef><FullName>Office Supplies</FullName></AccountRef>"
            f"<Amount>{debit}</Amount><Memo>Paper</Memo><ClassRef><FullName>Admin</FullName></ClassRef>"
            "</JournalDebitLine><JournalCreditLine><AccountRef><FullName>Accounts Payable</FullName></AccountRef>"
            f"<Amount>{credit}</Amount><Memo>R00002</Memo><EntityRef><FullName>Ann Smith</FullName></EntityRef>"
            "</JournalCreditLine></JournalEntryAdd></JournalEntryAddRq>")


# ------------------------------------------------------------------------------------ queries


def test_account_query_by_full_name_returns_ids_edit_sequence_type_and_active_flag(qb: QuickBooksSimulator) -> None:
    out = rs(qb.process_request(rq('<AccountQueryRq requestID="a1"><FullName>travel expense</FullName></AccountQueryRq>')))
    answer = out.find("AccountQueryRs")
    assert answer.get("requestID") == "a1" and answer.get("statusCode") == "0"
    ret = answer.find("AccountRet")
    assert ret.findtext("FullName") == "Travel Expense" and ret.findtext("AccountType") == "Expense"
    assert ret.findtext("ListID") and ret.findtext("EditSequence") and ret.findtext("IsActive") == "true"


def test_a_query_matching_nothing_is_status_1_and_a_partial_match_is_a_500_warning(qb: QuickBooksSimulator) -> None:
    none = rs(qb.process_request(rq("<ClassQueryRq><FullName>Nope</FullName></ClassQueryRq>")))[0]
    assert (none.get("statusCode"), none.get("statusSeverity")) == ("1", "Info")
    some = rs(qb.process_request(rq("<ClassQueryRq><FullName>Sales</FullName><FullName>Nope</FullName></ClassQueryRq>")))[0]
    assert (some.get("statusCode"), some.get("statusSeverity")) == ("500", "Warn")
    assert '"Nope"' in some.get("statusMessage") and [r.findtext("FullName") for r in some] == ["Sales"]


def test_inactive_items_come_back_by_name_with_isactive_false(qb: QuickBooksSimulator) -> None:
    before = qb.item("vendor", "Bob Jones").edit_sequence  # type: ignore[union-attr]
    qb.set_active("vendor", "Bob Jones", False)
    ret = rs(qb.process_request(rq("<VendorQueryRq><FullName>Bob Jones</FullName></VendorQueryRq>")))[0][0]
    assert ret.findtext("IsActive") == "false" and ret.findtext("Email") == "bob@example.com"
    assert ret.findtext("EditSequence") != before
    active = rs(qb.process_request(rq("<VendorQueryRq><ActiveStatus>ActiveOnly</ActiveStatus></VendorQueryRq>")))[0]
    assert "Bob Jones" not in [r.findtext("Name") for r in active]


def test_customer_jobs_and_accounts_by_type(qb: QuickBooksSimulator) -> None:
    job = rs(qb.process_request(rq("<CustomerQueryRq><FullName>Acme Corp:Project X</FullName></CustomerQueryRq>")))[0][0]
    assert job.findtext("ParentRef/FullName") == "Acme Corp" and job.findtext("Sublevel") == "1"
    payables = rs(qb.process_request(rq("<AccountQueryRq><AccountType>AccountsPayable</AccountType></AccountQueryRq>")))[0]
    assert [r.findtext("FullName") for r in payables] == ["Accounts Payable"]


# --------------------------------------------------------------------------------------- adds


def test_the_reference_bill_sample_is_added_with_txn_and_line_ids(qb: QuickBooksSimulator, reference_dir: Path,
                                                                   schema130: etree.XMLSchema) -> None:
    text = (reference_dir / "qbxml" / "samples" / "BillAddRq.xml").read_text()
    response = qb.process_request(text)
    schema130.assertValid(etree.fromstring(response.encode()))
    answer = rs(response).find("BillAddRs")
    assert answer.get("statusCode") == "0" and answer.get("requestID") == "exp-R00001-bill"
    ret = answer.find("BillRet")
    assert ret.findtext("TxnID") and ret.findtext("EditSequence") and ret.findtext("AmountDue") == "470.30"
    assert len({line.findtext("TxnLineID") for line in ret.findall("ExpenseLineRet")}) == 2
    (saved,) = qb.bills()
    assert saved.ref_number == "EXP-R00001" and saved.vendor == "Jane Employee"
    assert [(ln.account, str(ln.amount), ln.customer, ln.klass) for ln in saved.lines] == [
        ("Travel Expense:Airfare", "412.30", "Acme Corp:Project X", "Sales"),
        ("Travel Expense:Taxi", "58.00", None, None),
    ]


@pytest.mark.parametrize("inactive", [False, True])
def test_a_missing_or_inactive_account_is_3140_and_nothing_is_added(qb: QuickBooksSimulator, inactive: bool) -> None:
    account = "Travel Expense" if inactive else "Nope"
    if inactive:
        qb.set_active("account", account, False)
    answer = rs(qb.process_request(rq(bill(account=account))))[0]
    assert answer.get("statusCode") == "3140" and answer.get("statusSeverity") == "Error"
    assert answer.get("statusMessage") == f'There is an invalid reference to QuickBooks Account "{account}" in the Bill.'
    assert qb.transactions == [] and len(answer) == 0


def test_an_inactive_vendor_class_or_customer_is_3140_too(qb: QuickBooksSimulator) -> None:
    qb.set_active("class", "Sales", False)
    answer = rs(qb.process_request(rq(bill())))[0]
    assert answer.get("statusCode") == "3140" and 'Class "Sales"' in answer.get("statusMessage")


def test_a_billable_line_without_a_customer_is_refused(qb: QuickBooksSimulator) -> None:
    line = ("<ExpenseLineAdd><AccountRef><FullName>Meals and Entertainment</FullName></AccountRef>"
            "<Amount>5.00</Amount><BillableStatus>Billable</BillableStatus></ExpenseLineAdd>")
    answer = rs(qb.process_request(rq(bill(extra_line=line))))[0]
    assert answer.get("statusCode") == "3210" and "customer" in answer.get("statusMessage")
    assert qb.transactions == []


def test_a_balanced_journal_entry_is_added(qb: QuickBooksSimulator, schema130: etree.XMLSchema) -> None:
    response = qb.process_request(rq(journal()))
    schema130.assertValid(etree.fromstring(response.encode()))
    ret = rs(response).find("JournalEntryAddRs/JournalEntryRet")
    assert ret.findtext("TxnID") and ret.find("JournalDebitLine/TxnLineID") is not None
    (je,) = qb.journal_entries()
    assert je.total == 20 and [ln.side for ln in je.lines] == ["debit", "credit"]
    assert je.lines[1].customer == "Ann Smith"


@pytest.mark.parametrize("debit,credit,field", [("20.00", "19.99", "not in balance"), ("-5.00", "-5.00", "negative")])
def test_an_unbalanced_or_negative_journal_entry_is_3210(qb: QuickBooksSimulator, debit: str, credit: str,
                                                          field: str) -> None:
    answer = rs(qb.process_request(rq(journal(debit, credit))))[0]
    assert answer.get("statusCode") == "3210" and field in answer.get("statusMessage")
    assert qb.transactions == []


def test_queries_by_ref_number_find_what_was_added(qb: QuickBooksSimulator) -> None:
    none = rs(qb.process_request(rq("<BillQueryRq><RefNumber>EXP-R00001</RefNumber></BillQueryRq>")))[0]
    assert none.get("statusCode") == "1"
    qb.process_request(rq(bill()))
    qb.process_request(rq(journal()))
    found = rs(qb.process_request(rq('<BillQueryRq requestID="q"><RefNumber>exp-r00001</RefNumber>'
                                     "<IncludeLineItems>true</IncludeLineItems></BillQueryRq>")))[0]
    assert found.get("statusCode") == "0" and found.get("requestID") == "q"
    assert found.findtext("BillRet/TxnID") == qb.bills()[0].txn_id and found.find("BillRet/ExpenseLineRet") is not None
    je = rs(qb.process_request(rq("<JournalEntryQueryRq><RefNumber>R00002</RefNumber></JournalEntryQueryRq>")))[0]
    assert je.findtext("JournalEntryRet/TxnID") == qb.journal_entries()[0].txn_id
    assert je.find("JournalEntryRet/JournalDebitLine") is None  # no lines unless asked


def test_stop_on_error_stops_at_the_first_error_and_continue_on_error_does_not(qb: QuickBooksSimulator) -> None:
    body = bill("A", account="Nope", rid="1") + bill("B", rid="2")
    stopped = rs(qb.process_request(rq(body)))
    assert [r.get("requestID") for r in stopped] == ["1"] and qb.transactions == []
    went_on = rs(qb.process_request(rq(body, on_error="continueOnError")))
    assert [(r.get("requestID"), r.get("statusCode")) for r in went_on] == [("1", "3140"), ("2", "0")]
    assert [t.ref_number for t in qb.transactions] == ["B"]


# ------------------------------------------------------------------------------ error recovery


def test_a_repeated_message_set_id_replays_the_stored_response_and_adds_nothing(qb: QuickBooksSimulator) -> None:
    request = rq(bill(), attrs=' newMessageSetID="mlc-000001"')
    first = qb.process_request(request)
    assert rs(first).get("messageSetStatusCode") == "0" and rs(first).get("newMessageSetID") == "mlc-000001"
    again = qb.process_request(request)
    assert again == first and len(qb.bills()) == 1


def test_the_same_id_with_another_request_is_9001_and_executes_nothing(qb: QuickBooksSimulator) -> None:
    qb.process_request(rq(bill("A"), attrs=' newMessageSetID="mlc-000001"'))
    other = rs(qb.process_request(rq(bill("B"), attrs=' newMessageSetID="mlc-000001"')))
    assert other.get("messageSetStatusCode") == "9001" and [t.ref_number for t in qb.transactions] == ["A"]


def test_a_status_check_returns_the_stored_response_or_600(qb: QuickBooksSimulator) -> None:
    first = rs(qb.process_request(rq(bill(), attrs=' newMessageSetID="mlc-000001"')))
    txn_id = first.findtext("BillAddRs/BillRet/TxnID")
    for attrs in (' oldMessageSetID="mlc-000001"', ' oldMessageSetID="mlc-000001" newMessageSetID="mlc-000001"'):
        check = rs(qb.process_request(rq("", attrs=attrs)))
        assert check.get("messageSetStatusCode") == "0" and check.findtext("BillAddRs/BillRet/TxnID") == txn_id
    unknown = rs(qb.process_request(rq("", attrs=' oldMessageSetID="mlc-999999"')))
    assert unknown.get("messageSetStatusCode") == "600" and len(unknown) == 0
    assert len(qb.bills()) == 1


def test_a_new_id_with_a_different_old_id_clears_the_old_one(qb: QuickBooksSimulator) -> None:
    qb.process_request(rq(bill("A"), attrs=' newMessageSetID="mlc-1"'))
    qb.process_request(rq(bill("B"), attrs=' oldMessageSetID="mlc-1" newMessageSetID="mlc-2"'))
    assert rs(qb.process_request(rq("", attrs=' oldMessageSetID="mlc-1"'))).get("messageSetStatusCode") == "600"
    assert rs(qb.process_request(rq("", attrs=' oldMessageSetID="mlc-2"'))).get("messageSetStatusCode") == "0"


def test_the_reference_recovery_samples_run(qb: QuickBooksSimulator, reference_dir: Path) -> None:
    samples = reference_dir / "qbxml" / "samples"
    qb.add_account("Travel Expense:Lodging2")
    qb.process_request((samples / "ErrorRecovery_newMessageSetID.xml").read_text())
    check = rs(qb.process_request((samples / "ErrorRecovery_oldMessageSetID_statusCheck.xml").read_text()))
    assert check.get("messageSetStatusCode") == "0" and check.find("BillAddRs") is not None
    assert len(qb.bills()) == 1


def test_a_too_long_message_set_id_is_9004(qb: QuickBooksSimulator) -> None:
    out = rs(qb.process_request(rq(bill(), attrs=' newMessageSetID="x' + "y" * 30 + '"')))
    assert out.get("messageSetStatusCode") == "9004" and qb.transactions == []


# ------------------------------------------------------------------------- parse failures


@pytest.mark.parametrize("text", [
    rq(bill().replace("<TxnDate>2026-03-30</TxnDate><RefNumber>EXP-R00001</RefNumber>",
                      "<RefNumber>EXP-R00001</RefNumber><TxnDate>2026-03-30</TxnDate>")),  # wrong order
    rq(bill(amount="10.5")),  # not a qbXML amount
    rq(bill())[:-10],  # not well-formed
    rq(bill()).replace('<?qbxml version="13.0"?>', ""),  # no version
])
def test_invalid_requests_fail_like_quickbooks_with_the_parse_hresult(qb: QuickBooksSimulator, text: str) -> None:
    with pytest.raises(ProcessRequestError) as info:
        qb.process_request(text)
    assert info.value.hresult == PARSE_ERROR_HRESULT and qb.transactions == []
    assert qb.parse_errors


def test_a_version_above_what_this_quickbooks_speaks_is_refused(qb: QuickBooksSimulator) -> None:
    with pytest.raises(ProcessRequestError) as info:
        qb.process_request(rq(bill(), version="16.0"))
    assert info.value.hresult != PARSE_ERROR_HRESULT


def test_fault_switches(qb: QuickBooksSimulator) -> None:
    qb.fail_next("BillAddRq", 3175, "The list is locked by another user.")
    locked = rs(qb.process_request(rq(bill())))[0]
    assert (locked.get("statusCode"), locked.get("statusSeverity")) == ("3175", "Error")
    assert rs(qb.process_request(rq(bill())))[0].get("statusCode") == "0"
    qb.parse_failures = 1
    with pytest.raises(ProcessRequestError):
        qb.process_request(rq(bill("C")))
    assert [t.ref_number for t in qb.transactions] == ["EXP-R00001"]


def test_the_hcp_response_lists_the_supported_versions(qb: QuickBooksSimulator) -> None:
    host = rs(qb.hcp_response()).find("HostQueryRs/HostRet")
    versions = [v.text for v in host.findall("SupportedQBXMLVersion")]
    assert versions[-1] == "13.0" and "16.0" not in versions


def test_iterators_hand_out_pages_until_nothing_remains() -> None:
    import re as _re

    from mlconnector.sandbox.quickbooks import QuickBooksSimulator as Sim

    sim = Sim()
    for n in range(5):
        sim.add_vendor(f"Vendor {n}")

    def query(attrs: str) -> str:
        return sim.process_request(
            '<?xml version="1.0"?><?qbxml version="13.0"?><QBXML><QBXMLMsgsRq onError="continueOnError">'
            f"<VendorQueryRq requestID='1' {attrs}><MaxReturned>2</MaxReturned><ActiveStatus>All</ActiveStatus>"
            "</VendorQueryRq></QBXMLMsgsRq></QBXML>"
        )

    first = query('iterator="Start"')
    iterator_id = _re.search(r'iteratorID="([^"]+)"', first).group(1)  # type: ignore[union-attr]
    pages = [first, query(f'iterator="Continue" iteratorID="{iterator_id}"'),
             query(f'iterator="Continue" iteratorID="{iterator_id}"')]
    assert [p.count("<VendorRet>") for p in pages] == [2, 2, 1]
    assert [_re.search(r'iteratorRemainingCount="(\d+)"', p).group(1) for p in pages] == ["3", "1", "0"]  # type: ignore[union-attr]
    assert 'statusCode="3000"' in query(f'iterator="Continue" iteratorID="{iterator_id}"')  # spent
