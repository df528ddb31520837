"""What to do with a QuickBooks status code (QBXML.md §4).

``classify(code, severity)`` returns an :class:`Action`. Only 0-499 are plain success; 1 means a
query found nothing (not an error); 500-999 are warnings (the request *was* processed); the
error-recovery codes concern message sets; everything else is an error grouped by who must act.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What the caller should do about a status code."""

    OK = "ok"  # processed
    NO_MATCH = "no_match"  # a query found nothing (status 1): e.g. no existing bill for a RefNumber
    WARNING = "warning"  # processed, but check the message (500-999)
    RETRY_LATER = "retry_later"  # QuickBooks busy, locked or unavailable: send again in a later session
    FIX_REFERENCE = "fix_reference"  # an account/vendor/class/customer is missing or inactive: fix the mapping
    USER_FIX = "user_fix"  # QuickBooks refused the data or settings: a person must look
    UNSUPPORTED = "unsupported"  # this QuickBooks or qbXML version cannot do it
    BUG = "bug"  # ml-connector sent something malformed: report it
    ERROR_RECOVERY = "error_recovery"  # a message-set error-recovery answer (600, 9001-9005)

    @property
    def processed(self) -> bool:
        """QuickBooks carried the request out (a write is done; a query answered)."""
        return self in (Action.OK, Action.NO_MATCH, Action.WARNING)

    @property
    def retriable(self) -> bool:
        """Sending the same request again later may succeed without anyone changing anything."""
        return self is Action.RETRY_LATER


_EXACT = {
    0: Action.OK,
    1: Action.NO_MATCH,
    600: Action.ERROR_RECOVERY,
    1000: Action.RETRY_LATER,
    1010: Action.RETRY_LATER,
    1030: Action.UNSUPPORTED,
    1060: Action.BUG,
    3000: Action.FIX_REFERENCE,
    3120: Action.FIX_REFERENCE,
    3140: Action.FIX_REFERENCE,
    3010: Action.BUG, 3020: Action.BUG, 3030: Action.BUG, 3031: Action.BUG, 3035: Action.BUG,
    3040: Action.BUG, 3070: Action.BUG, 3150: Action.BUG,
    3100: Action.USER_FIX,
    3170: Action.RETRY_LATER, 3175: Action.RETRY_LATER, 3176: Action.RETRY_LATER,
    3180: Action.USER_FIX,
    3200: Action.RETRY_LATER,  # stale EditSequence: re-query, then try again
    3210: Action.USER_FIX,
    3220: Action.USER_FIX, 3231: Action.USER_FIX,
    3250: Action.USER_FIX, 3260: Action.USER_FIX, 3261: Action.USER_FIX, 3262: Action.USER_FIX,
    3263: Action.USER_FIX, 3264: Action.USER_FIX, 3270: Action.USER_FIX,
    9001: Action.ERROR_RECOVERY, 9002: Action.ERROR_RECOVERY, 9003: Action.ERROR_RECOVERY,
    9004: Action.ERROR_RECOVERY, 9005: Action.ERROR_RECOVERY,
}


def classify(status_code: int, severity: str | None = None) -> Action:
    """The action for a ``statusCode`` (and ``statusSeverity`` for codes not listed in QBXML.md §4)."""
    if status_code in _EXACT:
        return _EXACT[status_code]
    if 0 <= status_code < 500:
        return Action.OK
    if 500 <= status_code < 1000:
        return Action.WARNING
    if 2000 <= status_code < 3000:
        return Action.UNSUPPORTED
    if 3000 <= status_code < 3100:
        return Action.BUG  # 3000-3099: the request's format is wrong
    if severity is not None and severity.lower().startswith("warn"):
        return Action.WARNING
    return Action.USER_FIX
