"""Keep secrets out of logs, errors, audit rows and --json output.

Two nets: by key (anything named like a secret is replaced in mappings) and by value (secrets the
process knows about are registered once and masked in any text).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Any

MASK = "********"

_SECRET_KEY = re.compile(r"(secret|password|passwd|pwd|credential|ticket|token)", re.IGNORECASE)
# Secrets that travel inside text we might log: the Expensify job JSON and QBWC SOAP bodies.
_TEXT_PATTERNS = (
    re.compile(r'("partnerUserSecret"\s*:\s*")[^"]*(")'),
    re.compile(r"(partnerUserSecret%22%3A%22)[^%]*(%22)"),
    re.compile(r"(<(?:\w+:)?strPassword>)[^<]*(</(?:\w+:)?strPassword>)"),
)

_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact_text` masks it wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact_text(text: str) -> str:
    """Mask every registered secret and every secret-shaped field in ``text``."""
    # The patterns only match text that names the field; skip the regexes otherwise (audit hot path).
    if "partnerUserSecret" in text or "strPassword" in text:
        for pattern in _TEXT_PATTERNS:
            text = pattern.sub(rf"\g<1>{MASK}\g<2>", text)
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


@functools.lru_cache(maxsize=4096)  # audit details reuse a few dozen key names; each is checked once
def _secret_named(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def redact(value: Any) -> Any:
    """A copy of ``value`` (mappings, lists, text) with secret-named keys and known secrets masked."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if isinstance(k, str) and _secret_named(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class Secret:
    """A secret string that never shows itself in ``str``, ``repr`` or logs; ``reveal()`` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def ticket_ref(ticket: str) -> str:
    """A short, non-secret reference to a Web Connector ticket for logs and audit rows (the ticket is a credential)."""
    if not ticket:
        return "-"
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()[:12]
