"""Turn the downloaded JSON Lines export into validated reports, one line at a time.

The export template (``templates/export.ftl``) prints one JSON object per report per line and a
trailer ``{"end": true, "reports": N}``. :func:`iter_export` reads any iterable of lines, so a file of
any size is parsed in constant memory. A report that fails validation becomes an
:class:`InvalidReport` carrying the reason; it never stops the others.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mlconnector.errors import ExpensifyRetriableError
from mlconnector.models import Expense, Report, cents_to_decimal

_INT = re.compile(r"-?\d+")
_REPORT_ID = re.compile(rb'"reportID"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class InvalidReport:
    """A report that could not be validated: its ID (``""`` when unreadable) and why."""

    report_id: str
    reason: str


class _Invalid(ValueError):
    """Internal: a validation failure, with the reason as its text."""


def split_tag_levels(tag: str) -> tuple[str, ...]:
    """Split an Expensify tag into its levels on unescaped ``:``; ``\\:`` is a literal colon.

    ``"Sales\\:East:Project X"`` → ``("Sales:East", "Project X")``. A backslash before anything else
    is kept as it is. Levels are stripped; an empty tag has no levels.
    """
    if not tag.strip():
        return ()
    if "\\" not in tag:  # no escapes (nearly every tag): a plain split
        return tuple(level.strip() for level in tag.split(":"))
    levels: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(tag):
        ch = tag[i]
        if ch == "\\" and i + 1 < len(tag) and tag[i + 1] == ":":
            current.append(":")
            i += 2
            continue
        if ch == ":":
            levels.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    levels.append("".join(current).strip())
    return tuple(levels)


def signed_amount(cents: int) -> Decimal:
    """The one place that owns the sign convention: positive is a purchase, negative a refund.

    Expensify's exporter is believed to print purchases as positive cents and credits as negative
    (EXPENSIFY.md §4.1, unverified); if that turns out wrong, this is the only line to change.
    """
    return cents_to_decimal(cents)


def _cents(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Invalid(f"{what} is not an amount in cents ({value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    raise _Invalid(f"{what} is not a whole number of cents ({value!r})")


def effective_cents(expense: dict[str, Any], where: str) -> tuple[int, bool]:
    """The amount Expensify shows for an expense, in cents, and whether it is the converted one.

    The idiom of Expensify's own templates (EXPENSIFY.md §4.1): ``convertedAmount``, else
    ``modifiedAmount``, else ``amount``. ``modifiedAmount`` is 0 both when never modified and when
    modified to 0, so a 0 there falls through to ``amount``.
    """
    converted = _cents(expense.get("convertedAmount"), f"{where} convertedAmount")
    if converted is not None:
        return converted, True
    modified = _cents(expense.get("modifiedAmount"), f"{where} modifiedAmount")
    if modified:
        return modified, False
    amount = _cents(expense.get("amount"), f"{where} amount")
    if amount is None:
        raise _Invalid(f"{where} has no amount")
    return amount, False


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{key} is not text ({value!r})")
    return value


def _date(value: str, what: str, *, required: bool) -> dt.date | None:
    text = value.strip()
    if not text:
        if required:
            raise _Invalid(f"{what} is missing")
        return None
    try:
        # Expense dates are yyyy-MM-dd; report dates may carry a time after the day.
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise _Invalid(f"{what} is not a date yyyy-MM-dd ({text!r})") from None


def _bool(value: Any, what: str, default: bool | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
        return False
    if (value is None or value == "") and default is not None:
        return default
    raise _Invalid(f"{what} is not true or false ({value!r})")


def card_identifier(expense: dict[str, Any]) -> str:
    """The company card of an expense: the last four digits of ``cardNumber`` (masked, e.g.
    ``1234XXXXXXXX1979``), else ``cardID``, else "".

    Both fields are unverified in the exporter's data model (EXPENSIFY.md §4): anything that is not
    text or a number is ignored rather than refused, and a number with fewer than four digits is
    not taken for a card number.
    """
    number = expense.get("cardNumber")
    if isinstance(number, (str, int)) and not isinstance(number, bool):
        digits = "".join(ch for ch in str(number) if ch.isdigit())
        if len(digits) >= 4:
            return digits[-4:]
    card_id = expense.get("cardID")
    if isinstance(card_id, (str, int)) and not isinstance(card_id, bool):
        return str(card_id).strip()
    return ""


def _expense(data: Any, n: int, report_currency: str) -> Expense:
    if not isinstance(data, dict):
        raise _Invalid(f"expense {n} is not an object")
    transaction_id = _text(data, "transactionID").strip()
    where = f"expense {transaction_id or n}"
    if not transaction_id:
        raise _Invalid(f"expense {n} has no transactionID")
    cents, converted = effective_cents(data, where)
    date = _date(_text(data, "modifiedCreated") or _text(data, "created"), f"{where} date", required=True)
    assert date is not None
    currency = report_currency if converted else (_text(data, "currency") or report_currency)
    return Expense(
        transaction_id=transaction_id,
        date=date,
        merchant=_text(data, "modifiedMerchant") or _text(data, "merchant"),
        amount=signed_amount(cents),
        category=_text(data, "category").strip(),
        currency=currency,
        tags=split_tag_levels(_text(data, "tag")),
        comment=_text(data, "comment"),
        # A missing reimbursable flag would decide between an employee's bill and a card charge.
        reimbursable=_bool(data.get("reimbursable"), f"{where} reimbursable", None),
        billable=_bool(data.get("billable"), f"{where} billable", False),
        card=card_identifier(data),
        receipt_url=receipt_url(data),
    )


def receipt_url(expense: dict[str, Any]) -> str:
    """The receipt's address when Expensify gave one that is a plain http(s) URL, else ""."""
    url = expense.get("receiptURL")
    if not isinstance(url, str):
        return ""
    url = url.strip()
    return url if url.startswith(("https://", "http://")) and not any(c.isspace() for c in url) else ""


def parse_report(data: Any) -> Report | InvalidReport:
    """Validate one decoded report object; never raises for bad data."""
    if not isinstance(data, dict):
        return InvalidReport("", "the line is not a JSON object")
    raw_id = data.get("reportID")
    report_id = raw_id.strip() if isinstance(raw_id, str) else ""
    try:
        if not report_id:
            raise _Invalid("the report has no reportID")
        email = _text(data, "accountEmail").strip()
        if not email:
            raise _Invalid("the report has no submitter email (accountEmail)")
        items = data.get("expenses")
        if not isinstance(items, list):
            raise _Invalid("expenses is not a list")
        currency = _text(data, "currency").strip() or "USD"
        expenses = tuple(_expense(item, n, currency) for n, item in enumerate(items, 1))
        total_cents = _cents(data.get("total"), "total")
        total = signed_amount(total_cents) if total_cents is not None else sum(
            (e.amount for e in expenses), Decimal("0.00")
        )
        return Report(
            report_id=report_id,
            name=_text(data, "reportName"),
            submitter_email=email,
            status=_text(data, "status"),
            currency=currency,
            total=total,
            expenses=expenses,
            policy_id=_text(data, "policyID").strip(),
            policy_name=_text(data, "policyName"),
            submitter_name=_text(data, "submitterName"),
            created=_date(_text(data, "created"), "created", required=False),
            submitted=_date(_text(data, "submitted"), "submitted", required=False),
            approved=_date(_text(data, "approved"), "approved", required=False),
            report_fields=report_fields(data),
            reimbursed=_reimbursed_date(data),
            ach_reimbursed=_optional_bool(data.get("isACHReimbursed")),
        )
    except _Invalid as exc:
        return InvalidReport(report_id, str(exc))


def _reimbursed_date(data: dict[str, Any]) -> dt.date | None:
    """When the employee was paid. Its format in the exporter is unverified: a date that cannot be read is
    taken as none (the payment is then dated the day it is posted), never as a reason to refuse the report."""
    value = data.get("reimbursed")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _optional_bool(value: Any) -> bool | None:
    try:
        return None if value is None or value == "" else _bool(value, "isACHReimbursed", None)
    except _Invalid:
        return None


def _guess_id(line: bytes) -> str:
    match = _REPORT_ID.search(line)
    if not match:
        return ""
    try:
        return str(json.loads(b'"' + match.group(1) + b'"'))
    except ValueError:
        return ""


def iter_export(lines: Iterable[bytes]) -> Iterator[Report | InvalidReport]:
    """Yield each report of an export (valid or not), in file order.

    Raises:
        ExpensifyRetriableError: the file ended without its trailer, or the trailer's count does not
            match (a truncated download: pulling again will fetch it whole).
    """
    seen = 0
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            seen += 1
            yield InvalidReport(_guess_id(line), f"line {number} of the export is not valid JSON")
            continue
        if isinstance(data, dict) and data.get("end") is True and "reportID" not in data:
            if data.get("reports") != seen:
                raise ExpensifyRetriableError(
                    f"the export announced {data.get('reports')} reports but held {seen}", hint="pull again"
                )
            return
        seen += 1
        yield parse_report(data)
    raise ExpensifyRetriableError(f"the export ended early after {seen} reports (no trailer line)", hint="pull again")


def report_fields(report: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The header-level report fields the export brought, non-empty ones only, sorted by name."""
    fields = report.get("reportFields")
    if not isinstance(fields, dict):
        return ()
    found = {str(k): str(v).strip() for k, v in fields.items()
             if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v).strip()}
    return tuple(sorted(found.items()))
