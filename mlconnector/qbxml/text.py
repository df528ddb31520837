"""Text going to QuickBooks: cleaned, normalized and cut to each field's maximum, deterministically.

Free text (memos) is cleaned aggressively because QuickBooks and the Web Connector reject some
characters (QBXML.md §1, Expensify DESK18). Names in list references are never rewritten: a changed
name would point at a different (or no) QuickBooks record, so they are only checked.
"""

from __future__ import annotations

import unicodedata
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from mlconnector.errors import QbxmlError
from mlconnector.models import CENT

# Maximum lengths for QuickBooks Desktop (US), QBXML.md §9.
MAX_BILL_REF_NUMBER = 20
MAX_JOURNAL_REF_NUMBER = 11
MAX_ITEM_NAME = 159
MAX_CHECK_REF_NUMBER = 11  # checks and credit-card charges and credits
MAX_MEMO = 4095
MAX_VENDOR_NAME = 41
MAX_ACCOUNT_NAME = 159
MAX_CLASS_NAME = 159
MAX_CUSTOMER_NAME = 209
MAX_REQUEST_ID = 50
MAX_MESSAGE_SET_ID = 23

ELLIPSIS = "..."

_REPLACEMENTS = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": "'", "\u201d": "'", "\u201e": "'", "\u201f": "'", "\u2033": "'",
    # Expensify DESK18: double quotes, pipes and backslashes in descriptions fail QuickBooks exports.
    '"': "'", "|": "/", "\\": "/",
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u2007": " ",
    "\t": " ", "\n": " ", "\r": " ",
}


def _allowed(char: str) -> bool:
    code = ord(char)
    if code > 0xFFFF:
        return False  # outside the BMP (emoji): QuickBooks Desktop cannot store them
    category = unicodedata.category(char)
    # Cc control, Cf format (zero-width, bidi marks), Cs surrogates, Co private use, Cn unassigned.
    return not category.startswith("C")


# Printable ASCII needs no per-character work (the common case: thousands of lines per session).
_PLAIN_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F)) - set(_REPLACEMENTS)


def _plain(text: str) -> bool:
    return text.isascii() and not set(text) - _PLAIN_ASCII


def clean_text(text: str) -> str:
    """Free text made safe for QuickBooks: NFC, no control or format characters, no emoji,
    smart quotes and dashes as ASCII, runs of spaces collapsed, ends trimmed."""
    if _plain(text):
        return " ".join(text.split())
    text = unicodedata.normalize("NFC", text)
    out = "".join(_REPLACEMENTS.get(c, c) for c in text)
    out = "".join(c for c in out if _allowed(c))
    return " ".join(out.split())


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "..." when something was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return text[:limit]
    return text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def memo(text: str, limit: int = MAX_MEMO) -> str:
    """A memo as QuickBooks will get it: cleaned, then cut to ``limit``."""
    return truncate(clean_text(text), limit)


def check_name(name: str, limit: int, what: str) -> str:
    """A list name for a ``…Ref/FullName``: NFC-normalized and checked, never rewritten.

    Raises:
        QbxmlError: the name is empty, too long, or holds characters QuickBooks cannot store.
    """
    name = unicodedata.normalize("NFC", name)
    if not name.strip():
        raise QbxmlError(f"{what} name is empty")
    if len(name) > limit:
        raise QbxmlError(f"{what} name {name[:40]!r}… is longer than {limit} characters")
    bad = [] if _plain(name) else [c for c in name if not _allowed(c)]
    if bad:
        raise QbxmlError(f"{what} name {name!r} holds characters QuickBooks cannot store: {bad!r}")
    return name


def format_amount(amount: Decimal) -> str:
    """An AMTTYPE value: exactly two decimals, no separators (QBXML.md §10).

    Raises:
        QbxmlError: the amount is not a finite number or has more than 13 integer digits.
    """
    try:
        value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation as exc:
        raise QbxmlError(f"amount {amount!r} is not a number QuickBooks accepts") from exc
    if value == 0:
        value = abs(value)  # never "-0.00"
    text = f"{value:.2f}"
    if len(text.lstrip("-").split(".")[0]) > 13:
        raise QbxmlError(f"amount {text} has more than 13 digits before the decimal point")
    return text
