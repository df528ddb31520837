"""What the rest of the package needs to know about one QuickBooks transaction kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from mlconnector.models import PlannedPosting, PostingMode


@dataclass(frozen=True)
class TxnKind:
    """One kind of transaction ml-connector writes.

    ``txn_type`` names its requests and answers (``{txn_type}AddRq``, ``{txn_type}QueryRq``,
    ``{txn_type}Ret``); ``add`` builds the add request for a posting of ``mode``.
    """

    mode: PostingMode
    txn_type: str
    add: Callable[[PlannedPosting, str, str], etree._Element]
    # How recovery finds a posting again when the RefNumber alone cannot (e.g. a check to be printed);
    # None: by RefNumber.
    recovery_query: Callable[[PlannedPosting, str, str], etree._Element] | None = None

    @property
    def query_tag(self) -> str:
        """The query request that finds transactions of this kind (by RefNumber or TxnID)."""
        return f"{self.txn_type}QueryRq"
