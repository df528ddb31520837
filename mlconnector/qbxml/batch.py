"""Pack several postings into one ``QBXMLMsgsRq`` under a line budget, so a session needs few round trips.

Postings are taken in the order given (oldest first) until the next one would exceed
``max_lines``; a single posting larger than the budget travels alone. Each posting's request
carries its own requestID so each answer can be matched to its posting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlconnector.models import PlannedPosting
from mlconnector.qbxml.build import build_message, write_request


@dataclass(frozen=True)
class BatchItem:
    """A posting to send and the requestID its answer will carry."""

    request_id: str
    posting: PlannedPosting

    @property
    def line_count(self) -> int:
        """Lines the posting adds to the message (what the budget counts)."""
        return max(1, len(self.posting.lines))


@dataclass(frozen=True)
class Batch:
    """One message: its qbXML, the items it carries, and its line count."""

    xml: bytes
    items: tuple[BatchItem, ...]
    line_count: int

    @property
    def request_ids(self) -> tuple[str, ...]:
        """The requestIDs in the message, in order."""
        return tuple(item.request_id for item in self.items)


def take_batch(items: Sequence[BatchItem], max_lines: int) -> tuple[list[BatchItem], list[BatchItem]]:
    """Split ``items`` into the ones that fit in one message and the rest, keeping order.

    The first item is always taken, even when it alone is over the budget.
    """
    taken: list[BatchItem] = []
    used = 0
    for index, item in enumerate(items):
        if taken and used + item.line_count > max_lines:
            return taken, list(items[index:])
        taken.append(item)
        used += item.line_count
    return taken, []


def pack(items: Sequence[BatchItem], max_lines: int) -> list[list[BatchItem]]:
    """All of ``items`` cut into consecutive groups that each fit one message."""
    groups: list[list[BatchItem]] = []
    rest = list(items)
    while rest:
        taken, rest = take_batch(rest, max_lines)
        groups.append(taken)
    return groups


def build_batch(
    items: Sequence[BatchItem],
    *,
    version: str,
    max_lines: int,
    on_error: str = "continueOnError",
    new_message_set_id: str | None = None,
    old_message_set_id: str | None = None,
) -> Batch:
    """The next message: as many of ``items`` as fit in ``max_lines``, as add requests.

    ``continueOnError`` by default: the postings are independent, so one refusal must not leave
    the others unanswered (a message set is never a transaction in QuickBooks anyway).

    Raises:
        QbxmlError: a posting cannot be expressed in qbXML (see :func:`write_request`).
    """
    taken, _ = take_batch(items, max_lines)
    requests = [write_request(item.posting, item.request_id, version) for item in taken]
    xml = build_message(
        requests,
        version=version,
        on_error=on_error,
        new_message_set_id=new_message_set_id,
        old_message_set_id=old_message_set_id,
    )
    return Batch(xml=xml, items=tuple(taken), line_count=sum(item.line_count for item in taken))
