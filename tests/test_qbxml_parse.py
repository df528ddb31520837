from __future__ import annotations

from pathlib import Path

import pytest

from mlconnector.errors import QbxmlParseError
from mlconnector.models import ListKind
from mlconnector.qbxml.parse import parse_response
from mlconnector.qbxml.status import Action, classify
from mlconnector.qbxml.xml import parse_xml

MIXED = """<?xml version="1.0" ?>
<QBXML>
  <QBXMLMsgsRs newMessageSetID="mlc-7" messageSetStatusCode="0">
    <BillAddRs requestID="11" statusCode="0" statusSeverity="Info" statusMessage="Status OK">
      <BillRet>
        <TxnID>1A2B-1717171717</TxnID>
        <EditSequence>1717171717</EditSequence>
        <RefNumber>R00001</RefNumber>
        <ExternalGUID>{0930554A-498C-5429-9611-41ABD920E244}</ExternalGUID>
        <ExpenseLineRet><TxnLineID>1A2C-1</TxnLineID><Amount>10.00</Amount></ExpenseLineRet>
        <ExpenseLineRet><TxnLineID>1A2D-1</TxnLineID><Amount>5.00</Amount></ExpenseLineRet>
      </BillRet>
    </BillAddRs>
    <JournalEntryAddRs requestID="12" statusCode="3140" statusSeverity="Error"
        statusMessage="There is an invalid reference to QuickBooks Account &quot;Travl&quot; in the Journal Entry.">
      <ErrorRecovery><TxnID>99-1</TxnID><EditSequence>42</EditSequence><ExternalGUID>{49E6846A-421B-5C08-A333-F2B7427817B9}</ExternalGUID></ErrorRecovery>
    </JournalEntryAddRs>
    <BillAddRs requestID="13" statusCode="550" statusSeverity="Warn" statusMessage="saved but Notes not saved">
      <BillRet><TxnID>1A2E-1</TxnID><EditSequence>5</EditSequence><JournalDebitLine/></BillRet>
    </BillAddRs>
    <BillQueryRs requestID="14" statusCode="1" statusSeverity="Info" statusMessage="A query request did not find a matching object in QuickBooks"/>
    <VendorQueryRs requestID="15" statusCode="500" statusSeverity="Warn" statusMessage="One or more objects cannot be found."
        retCount="2" iteratorRemainingCount="0" iteratorID="{A1B2C3D4-1234-5678-9ABC-DEF012345678}">
      <VendorRet><ListID>80000001-1</ListID><EditSequence>7</EditSequence><Name>Ann Smith</Name><FullName>Ann Smith</FullName><IsActive>true</IsActive><Email>ann@example.com</Email></VendorRet>
      <VendorRet><ListID>80000002-1</ListID><EditSequence>8</EditSequence><FullName>Old Bob</FullName><IsActive>false</IsActive></VendorRet>
    </VendorQueryRs>
    <AccountQueryRs requestID="16" statusCode="0" statusSeverity="Info" statusMessage="Status OK">
      <AccountRet><ListID>A1</ListID><FullName>Travel:Airfare</FullName><IsActive>true</IsActive><AccountType>Expense</AccountType></AccountRet>
    </AccountQueryRs>
  </QBXMLMsgsRs>
</QBXML>"""


def test_a_mixed_response_is_read_request_by_request() -> None:
    message = parse_response(MIXED)
    assert message.new_message_set_id == "mlc-7" and message.message_set_status_code == 0
    by_id = message.by_request_id()
    assert list(by_id) == ["11", "12", "13", "14", "15", "16"]
    ok = by_id["11"]
    assert (ok.action, ok.txn_id, ok.edit_sequence, ok.txn_line_ids) == (
        Action.OK, "1A2B-1717171717", "1717171717", ("1A2C-1", "1A2D-1"))
    assert ok.txns[0].ref_number == "R00001" and ok.txns[0].txn_type == "Bill"
    error = by_id["12"]
    assert error.action is Action.FIX_REFERENCE and not error.action.processed
    assert 'Account "Travl"' in error.status_message and error.status_severity == "Error"
    assert error.error_recovery is not None and error.error_recovery.txn_id == "99-1"
    assert error.error_recovery.edit_sequence == "42"
    warning = by_id["13"]
    assert warning.action is Action.WARNING and warning.action.processed and warning.txn_id == "1A2E-1"
    assert by_id["14"].action is Action.NO_MATCH and by_id["14"].txns == ()
    vendors = by_id["15"]
    assert vendors.action is Action.WARNING and vendors.ret_count == 2 and vendors.iterator_remaining_count == 0
    assert [(r.full_name, r.is_active, r.email, r.kind) for r in vendors.records] == [
        ("Ann Smith", True, "ann@example.com", ListKind.VENDOR), ("Old Bob", False, None, ListKind.VENDOR)]
    assert by_id["16"].records[0].account_type == "Expense"


def test_the_reference_sample_response_parses(reference_dir: Path) -> None:
    message = parse_response((reference_dir / "qbxml" / "samples" / "ResponseSample_BillAddRs.xml").read_bytes())
    assert [r.action for r in message.responses] == [Action.OK, Action.OK, Action.NO_MATCH]
    assert message.responses[0].txn_id == "1A2B-1717171717"


def test_error_recovery_message_set_codes_are_classified() -> None:
    text = '<QBXML><QBXMLMsgsRs messageSetStatusCode="9001"/></QBXML>'
    message = parse_response(text)
    assert message.responses == () and message.message_set_action is Action.ERROR_RECOVERY
    assert parse_response("<QBXML><QBXMLMsgsRs/></QBXML>").message_set_action is None


@pytest.mark.parametrize(
    ("code", "severity", "action"),
    [
        (0, "Info", Action.OK), (1, "Info", Action.NO_MATCH), (2, "Info", Action.OK),
        (500, "Warn", Action.WARNING), (530, "Warn", Action.WARNING), (999, "Warn", Action.WARNING),
        (600, None, Action.ERROR_RECOVERY), (9001, None, Action.ERROR_RECOVERY), (9002, None, Action.ERROR_RECOVERY),
        (9004, None, Action.ERROR_RECOVERY), (9005, None, Action.ERROR_RECOVERY),
        (1000, "Error", Action.RETRY_LATER), (1010, "Error", Action.RETRY_LATER), (3175, "Error", Action.RETRY_LATER),
        (3176, "Error", Action.RETRY_LATER), (3170, "Error", Action.RETRY_LATER),
        (3000, "Error", Action.FIX_REFERENCE), (3120, "Error", Action.FIX_REFERENCE), (3140, "Error", Action.FIX_REFERENCE),
        (3210, "Error", Action.USER_FIX), (3180, "Error", Action.USER_FIX), (3250, "Error", Action.USER_FIX),
        (3100, "Error", Action.USER_FIX), (3270, "Error", Action.USER_FIX),
        (1030, "Error", Action.UNSUPPORTED), (2500, "Error", Action.UNSUPPORTED),
        (1060, "Error", Action.BUG), (3040, "Error", Action.BUG), (3070, "Error", Action.BUG), (3050, "Error", Action.BUG),
        (3999, "Error", Action.USER_FIX), (3999, "Warn", Action.WARNING),
    ],
)
def test_status_codes_are_classified_by_what_to_do(code: int, severity: str | None, action: Action) -> None:
    assert classify(code, severity) is action


def test_only_busy_codes_are_retriable() -> None:
    assert classify(3176).retriable and not classify(3140).retriable and not classify(0).retriable


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty"),
        ("<QBXML><QBXMLMsgsRs>", "not well-formed"),
        ("<QBXML/>", "no <QBXMLMsgsRs>"),
        ("<SOAP/>", "expected a <QBXML>"),
        ('<QBXML><QBXMLMsgsRs><BillAddRs requestID="1"/></QBXMLMsgsRs></QBXML>', "no statusCode"),
        ('<QBXML><QBXMLMsgsRs><BillAddRs statusCode="abc"/></QBXMLMsgsRs></QBXML>', "not a number"),
        ('<QBXML><QBXMLMsgsRs messageSetStatusCode="x"/></QBXML>', "not a number"),
        ("<QBXML><QBXMLMsgsRs><Junk/></QBXMLMsgsRs></QBXML>", "unexpected <Junk>"),
        ('<!DOCTYPE QBXML [<!ENTITY a "aaaa">]><QBXML><QBXMLMsgsRs/></QBXML>', "DTD"),
    ],
)
def test_malformed_responses_raise_a_clear_error(content: str, problem: str) -> None:
    with pytest.raises(QbxmlParseError, match=problem) as info:
        parse_response(content)
    assert info.value.content is not None and len(info.value.content) <= 200


def test_entities_are_never_expanded_and_the_network_never_touched() -> None:
    evil = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://example.com/x">]>'
            "<QBXML><QBXMLMsgsRs>&x;</QBXMLMsgsRs></QBXML>")
    with pytest.raises(QbxmlParseError):
        parse_response(evil)


def test_text_with_an_encoding_declaration_parses() -> None:
    root = parse_xml('<?xml version="1.0" encoding="windows-1252"?><QBXML><A>Café</A></QBXML>')
    assert root.findtext("A") == "Café"
    assert parse_xml('\ufeff<?xml version="1.0" encoding="utf-16"?><QBXML/>').tag == "QBXML"


def test_comments_are_dropped() -> None:
    root = parse_xml("<QBXML><!-- hi --><QBXMLMsgsRs/></QBXML>")
    assert [c.tag for c in root] == ["QBXMLMsgsRs"]


def test_vendor_records_are_named_by_name_because_vendor_ret_has_no_full_name() -> None:
    from mlconnector.models import ListKind
    from mlconnector.qbxml.parse import parse_response

    parsed = parse_response(
        '<?xml version="1.0"?><QBXML><QBXMLMsgsRs><VendorQueryRs requestID="v" statusCode="0" statusSeverity="Info"'
        ' statusMessage="Status OK"><VendorRet><ListID>8-1</ListID><EditSequence>17</EditSequence><Name>Ann Smith</Name>'
        "<IsActive>true</IsActive><Email>ann@example.com</Email></VendorRet></VendorQueryRs></QBXMLMsgsRs></QBXML>"
    )
    (record,) = parsed.responses[0].records
    assert (record.kind, record.full_name, record.email, record.list_id) == (
        ListKind.VENDOR, "Ann Smith", "ann@example.com", "8-1")
