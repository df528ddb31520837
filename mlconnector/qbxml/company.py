"""What the Web Connector tells about the company file: its Host, Company and Preferences answers.

The first sendRequestXML of a session carries them (``strHCPResponse``). ml-connector reads what decides
how it may post: class tracking, the closing date, multi-currency and the home currency, the edition.
A malformed answer is no reason to stop posting: it yields None and the caller logs it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from lxml import etree

from mlconnector.errors import QbxmlParseError
from mlconnector.qbxml.xml import parse_xml


@dataclass(frozen=True)
class CompanyFile:
    """The company file's settings that posting must respect."""

    class_tracking: bool | None = None  # None: QuickBooks did not say
    closing_date: str | None = None  # ISO date; transactions on or before it are in a closed period
    multicurrency: bool | None = None
    home_currency: str | None = None
    country: str | None = None  # the edition: US, CA, UK, AU
    product: str | None = None
    company_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The stored and ``status --json`` form."""
        return asdict(self)


def parse_company_file(text: str) -> CompanyFile | None:
    """The settings in a Host/Company/Preferences answer, or None when it cannot be read."""
    try:
        root = parse_xml(text.encode("utf-8"))
    except (QbxmlParseError, ValueError, UnicodeError):
        return None
    prefs = root.find(".//PreferencesRet")
    host = root.find(".//HostRet")
    company = root.find(".//CompanyRet")
    if prefs is None and host is None and company is None:
        return None
    closing = _text(prefs, "AccountingPreferences/ClosingDate")
    return CompanyFile(
        class_tracking=_bool(_text(prefs, "AccountingPreferences/IsUsingClassTracking")),
        closing_date=closing if closing and _is_date(closing) else None,
        multicurrency=_bool(_text(prefs, "MultiCurrencyPreferences/IsMultiCurrencyOn")),
        home_currency=_text(prefs, "MultiCurrencyPreferences/HomeCurrencyRef/FullName"),
        country=_text(host, "Country"),
        product=_text(host, "ProductName"),
        company_name=_text(company, "CompanyName"),
    )


# Asked in the lists or verify message when the Web Connector sent no readable strHCPResponse.
COMPANY_QUERIES = ("HostQueryRq", "CompanyQueryRq", "PreferencesQueryRq")


def company_queries() -> list[etree._Element]:
    """The Host, Company and Preferences queries, whose answers :func:`parse_company_file` reads."""
    return [etree.Element(name, requestID=f"c-{name.removesuffix('QueryRq').lower()}") for name in COMPANY_QUERIES]


def answers_company_queries(response: str) -> bool:
    """Whether a response may carry answers to :func:`company_queries` (a cheap test before parsing)."""
    return "PreferencesQueryRs" in response or "HostQueryRs" in response


def _text(parent: etree._Element | None, path: str) -> str | None:
    if parent is None:
        return None
    value = parent.findtext(path)
    return value.strip() if value and value.strip() else None


def _bool(value: str | None) -> bool | None:
    return None if value is None else value.casefold() == "true"


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True
