"""A QuickBooks Desktop company simulator (see ``simulator`` for what it models); one module per concern."""

from mlconnector.sandbox.quickbooks.records import (
    PARSE_ERROR_HRESULT,
    PARSE_ERROR_MESSAGE,
    Hold,
    ListItem,
    ProcessRequestError,
    Txn,
    TxnLine,
)
from mlconnector.sandbox.quickbooks.simulator import QuickBooksSimulator

__all__ = [
    "PARSE_ERROR_HRESULT", "PARSE_ERROR_MESSAGE", "Hold", "ListItem", "ProcessRequestError", "QuickBooksSimulator",
    "Txn", "TxnLine",
]
