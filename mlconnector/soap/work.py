"""Where ``mlconnector serve`` gets its :class:`~mlconnector.soap.session.Work`.

The posting logic (recovery, list re-query, BillAdd/JournalEntryAdd batches) replaces the body of
:func:`make_work`; until then the service reports that there is nothing to do, so the Web Connector
hears ``"none"`` and closes politely.
"""

from __future__ import annotations

from mlconnector.config import Config
from mlconnector.soap.session import Work
from mlconnector.store import Store


class NoWork:
    """A Work with nothing to send: authenticate answers ``"none"``."""

    def has_work(self) -> bool:
        return False

    def next_request(self, ticket: str, qbxml_version: str, hcp_response: str | None) -> str | None:
        return None

    def handle_response(self, ticket: str, response: str) -> int:
        return 100

    def handle_failure(self, ticket: str, hresult: str, message: str) -> int:
        return 100

    def on_session_lost(self, ticket: str) -> None:
        return None

    def summary(self, ticket: str) -> str | None:
        return None


def make_work(store: Store, config: Config) -> Work:
    """The Work that ``mlconnector serve`` runs (replace the body with the posting logic)."""
    return NoWork()
