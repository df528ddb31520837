"""Reading the company file's settings from the Web Connector's Host/Company/Preferences answer."""

from __future__ import annotations

from mlconnector.qbxml.company import CompanyFile, parse_company_file
from mlconnector.sandbox.quickbooks import QuickBooksSimulator

HCP = """<?xml version="1.0" ?><QBXML><QBXMLMsgsRs>
<HostQueryRs requestID="0" statusCode="0"><HostRet><ProductName>QuickBooks Premier 2024</ProductName>
<Country>CA</Country></HostRet></HostQueryRs>
<CompanyQueryRs requestID="1" statusCode="0"><CompanyRet><CompanyName>Maple Ltd</CompanyName></CompanyRet></CompanyQueryRs>
<PreferencesQueryRs requestID="2" statusCode="0"><PreferencesRet><AccountingPreferences>
<IsUsingClassTracking>false</IsUsingClassTracking><ClosingDate>2026-03-31</ClosingDate></AccountingPreferences>
<MultiCurrencyPreferences><IsMultiCurrencyOn>true</IsMultiCurrencyOn><HomeCurrencyRef><FullName>Canadian Dollar</FullName>
</HomeCurrencyRef></MultiCurrencyPreferences></PreferencesRet></PreferencesQueryRs></QBXMLMsgsRs></QBXML>"""


def test_the_settings_that_decide_posting_are_read() -> None:
    assert parse_company_file(HCP) == CompanyFile(
        class_tracking=False, closing_date="2026-03-31", multicurrency=True, home_currency="Canadian Dollar",
        country="CA", product="QuickBooks Premier 2024", company_name="Maple Ltd")


def test_what_cannot_be_read_is_none_never_an_error() -> None:
    assert parse_company_file("<QBXML><not-closed") is None
    assert parse_company_file("<QBXML/>") is None
    odd = parse_company_file(HCP.replace("2026-03-31", "31/03/2026"))
    assert odd is not None and odd.closing_date is None


def test_the_simulator_reports_its_own_preferences() -> None:
    qb = QuickBooksSimulator.seeded()
    qb.class_tracking, qb.closing_date = False, "2026-01-31"
    read = parse_company_file(qb.hcp_response())
    assert read is not None and (read.class_tracking, read.closing_date, read.country) == (False, "2026-01-31", "US")
