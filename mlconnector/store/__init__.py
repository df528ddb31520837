"""The state file: the only importer of sqlite3. Every SQL statement of ml-connector is in this package.

``db`` holds the connection, ``atomic()`` and the migrations; each other module holds the queries of
one concern (reports, postings, qbXML messages, Web Connector sessions, QuickBooks lists, the audit log).
"""

from mlconnector.store.db import Store

__all__ = ["Store"]
