"""Ordered, named schema migrations for the SQLite state file.

Each migration runs inside one transaction together with the row that records it, so a failing
migration leaves the schema as it was and stays pending. Never edit a migration that has shipped:
append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Migration:
    """A named schema change: SQL text (several statements allowed) or a function."""

    name: str
    step: Step


def split_sql(script: str) -> Iterator[str]:
    """Split a script into complete statements (trigger bodies with inner ``;`` stay whole).

    ``executescript`` would commit the open transaction, so statements run one by one instead.
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement: {buffer.strip()[:60]!r}")


INITIAL_SCHEMA = """
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE reports (
    report_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    submitter_email TEXT NOT NULL,
    submitter_name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    currency TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    policy_id TEXT NOT NULL DEFAULT '',
    policy_name TEXT NOT NULL DEFAULT '',
    created TEXT,
    submitted TEXT,
    approved TEXT,
    fingerprint TEXT NOT NULL,
    -- set when Expensify shows an edit to a report QuickBooks already has; never posted again silently
    changed_after_posting INTEGER NOT NULL DEFAULT 0,
    changed_fingerprint TEXT,
    first_pulled_at TEXT NOT NULL,
    last_pulled_at TEXT NOT NULL,
    exported_stamped_at TEXT
);

CREATE TABLE expenses (
    report_id TEXT NOT NULL REFERENCES reports(report_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    date TEXT NOT NULL,
    merchant TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    category TEXT NOT NULL,
    tags TEXT NOT NULL,              -- JSON array of tag levels, already unescaped
    comment TEXT NOT NULL DEFAULT '',
    reimbursable INTEGER NOT NULL,
    billable INTEGER NOT NULL,
    PRIMARY KEY (report_id, position)
);

CREATE TABLE postings (
    id INTEGER PRIMARY KEY,
    report_id TEXT NOT NULL REFERENCES reports(report_id),
    part INTEGER NOT NULL,
    part_count INTEGER NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    ref_number TEXT NOT NULL DEFAULT '',
    txn_date TEXT,
    vendor TEXT NOT NULL DEFAULT '',
    account TEXT NOT NULL DEFAULT '',
    total_cents INTEGER NOT NULL DEFAULT 0,
    line_count INTEGER NOT NULL DEFAULT 0,
    body TEXT,                       -- JSON of the PlannedPosting; NULL for a report blocked at planning
    report_fingerprint TEXT NOT NULL,
    reason TEXT,                     -- why blocked or failed, in words a bookkeeper can act on
    request_id TEXT,
    message_set_id TEXT,
    txn_id TEXT,
    edit_sequence TEXT,
    txn_line_ids TEXT,
    qb_status_code INTEGER,
    qb_status_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (report_id, part)
);
CREATE INDEX postings_state ON postings(state);

CREATE TABLE qbwc_sessions (
    ticket TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    company_file TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    stage TEXT,
    qbxml_version TEXT,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    closed_at TEXT,
    last_error TEXT,
    detail TEXT                      -- JSON: progress counters and protocol bookkeeping
);

CREATE TABLE qbxml_messages (
    id INTEGER PRIMARY KEY,
    ticket TEXT NOT NULL,
    kind TEXT NOT NULL,              -- recovery | query | write
    message_set_id TEXT,
    request_xml TEXT NOT NULL,
    response_xml TEXT,
    hresult TEXT,
    error_message TEXT,
    state TEXT NOT NULL,             -- sent | answered | lost | failed
    sent_at TEXT NOT NULL,
    answered_at TEXT
);
CREATE INDEX qbxml_messages_ticket ON qbxml_messages(ticket);

CREATE TABLE qb_lists (
    kind TEXT NOT NULL,              -- account | vendor | class | customer
    full_name TEXT NOT NULL COLLATE NOCASE,
    list_id TEXT,
    edit_sequence TEXT,
    is_active INTEGER,
    email TEXT,
    detail TEXT,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (kind, full_name)
);

CREATE TABLE mappings (
    kind TEXT NOT NULL,              -- category | class | customer | employee
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, source)
);

CREATE TABLE expensify_lists (
    policy_id TEXT NOT NULL,
    kind TEXT NOT NULL,              -- category | tag | employee
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    detail TEXT,
    fetched_at TEXT NOT NULL,
    PRIMARY KEY (policy_id, kind, name)
);

CREATE TABLE pulls (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    result TEXT,                     -- ok | partial | failed
    summary TEXT,                    -- JSON counts
    error TEXT
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    report_id TEXT,
    posting_id INTEGER,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_report ON audit(report_id);
CREATE INDEX audit_event ON audit(event);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""

# Reports planned with nothing to post (e.g. only company-card expenses, left out): remembered with the
# fingerprint they were planned at, so an unchanged report is not planned (and noted) again on every pull.
PLAN_SKIPS = """
CREATE TABLE plan_skips (
    report_id TEXT PRIMARY KEY REFERENCES reports(report_id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
"""

# Which postings a stored qbXML message concerns: the writes it carries (with their requestIDs), the
# in-doubt postings it checks, or the postings it verified (only those may be written that session).
MESSAGE_ITEMS = """
CREATE TABLE qbxml_message_items (
    message_id INTEGER NOT NULL REFERENCES qbxml_messages(id),
    posting_id INTEGER NOT NULL,
    request_id TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, posting_id)
);
CREATE INDEX qbxml_message_items_posting ON qbxml_message_items(posting_id);
"""


def _postings_autoincrement(conn: sqlite3.Connection) -> None:
    """Rebuild ``postings`` with AUTOINCREMENT so a deleted posting's id is never handed out again.

    Audit rows and message items name postings by id; a reused id would point them at another report.
    The new table is the old DDL with AUTOINCREMENT added, so the columns cannot drift.
    """
    (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'postings'").fetchone()
    if "AUTOINCREMENT" in ddl.upper():
        return
    new_ddl = ddl.replace("CREATE TABLE postings", "CREATE TABLE postings_new", 1).replace(
        "id INTEGER PRIMARY KEY,", "id INTEGER PRIMARY KEY AUTOINCREMENT,", 1
    )
    if new_ddl == ddl or "AUTOINCREMENT" not in new_ddl:
        raise ValueError("unexpected postings table definition")
    conn.execute(new_ddl)
    conn.execute("INSERT INTO postings_new SELECT * FROM postings")
    conn.execute("DROP TABLE postings")
    conn.execute("ALTER TABLE postings_new RENAME TO postings")
    conn.execute("CREATE INDEX postings_state ON postings(state)")
    # Deleted postings may still be named by audit rows and message items: start above all of them.
    (highest,) = conn.execute(
        "SELECT MAX(n) FROM (SELECT MAX(id) AS n FROM postings UNION ALL SELECT MAX(posting_id) FROM audit"
        " UNION ALL SELECT MAX(posting_id) FROM qbxml_message_items)"
    ).fetchone()
    conn.execute("DELETE FROM sqlite_sequence WHERE name = 'postings'")
    conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('postings', ?)", (highest or 0,))


# Every QuickBooks transaction known to stand for a posting, from any source (a write answer, recovery,
# an answer that came back after its session was given up). A posting with two live transactions is a
# duplicate QuickBooks holds; it is shown, never deleted. `gone_at`: QuickBooks later said it is absent.
# Plus the run of identical whole-request failures (hresults) per posting, so a request QuickBooks cannot
# read is failed after a few sessions instead of being retried for ever.
POSTING_TXNS = """
CREATE TABLE posting_txns (
    posting_id INTEGER NOT NULL,
    txn_id TEXT NOT NULL,
    txn_type TEXT NOT NULL DEFAULT '',
    ref_number TEXT,
    edit_sequence TEXT,
    how TEXT NOT NULL,               -- written | recovered | late_answer
    ticket_ref TEXT,                 -- the session that learned it (a hash: the ticket is a credential)
    seen_at TEXT NOT NULL,
    gone_at TEXT,
    PRIMARY KEY (posting_id, txn_id)
);
CREATE INDEX posting_txns_session ON posting_txns(ticket_ref);
INSERT INTO posting_txns (posting_id, txn_id, txn_type, ref_number, edit_sequence, how, seen_at)
    SELECT id, txn_id, CASE mode WHEN 'bill' THEN 'Bill' WHEN 'journal' THEN 'JournalEntry' ELSE mode END,
           ref_number, edit_sequence, 'written', updated_at FROM postings WHERE txn_id IS NOT NULL;

CREATE TABLE request_failures (
    posting_id INTEGER NOT NULL,
    kind TEXT NOT NULL,              -- the kind of message QuickBooks refused (write, verify, ...)
    hresult TEXT NOT NULL,
    message TEXT NOT NULL,
    count INTEGER NOT NULL,
    last_at TEXT NOT NULL,
    PRIMARY KEY (posting_id, kind)   -- one run per kind: a refused check does not reset a refused write
);
"""

# The company card of an expense (last four digits, else Expensify's card ID; "" when unknown or personal),
# and the address of its receipt (linked from the line's memo; "" when none).
EXPENSE_CARD = """
ALTER TABLE expenses ADD COLUMN card TEXT NOT NULL DEFAULT '';
ALTER TABLE expenses ADD COLUMN receipt_url TEXT NOT NULL DEFAULT '';
"""

# Header-level report fields (class and customer:job per report): JSON pairs, "" for none.
REPORT_FIELDS = """
ALTER TABLE reports ADD COLUMN report_fields TEXT NOT NULL DEFAULT '';
"""

# Reimbursement in Expensify (the date, and whether by ACH; outside the fingerprint), and the bills QuickBooks
# showed already paid when ml-connector came to pay them (someone paid them by hand): recorded, never paid again.
REIMBURSEMENTS = """
ALTER TABLE reports ADD COLUMN reimbursed TEXT;
ALTER TABLE reports ADD COLUMN ach_reimbursed INTEGER;
-- 1 from the pull that sees a report reimbursed until its payment is queued (or found paid, or not needed):
-- what every Web Connector call asks about, through a small index, not a scan of every report.
ALTER TABLE reports ADD COLUMN payment_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX reports_payment_pending ON reports(report_id) WHERE payment_pending = 1;
CREATE TABLE bills_paid_by_hand (
    report_id TEXT PRIMARY KEY REFERENCES reports(report_id),
    bills TEXT NOT NULL,             -- JSON: each bill part's TxnID, RefNumber, total and open amount seen
    found_at TEXT NOT NULL
);
"""

# Alerts (notify): what each channel was told already (one row per item and channel, dropped when the item
# goes away, so an item that comes back later is told again), and when each channel may send its next digest.
ALERTS = """
CREATE TABLE alerts_sent (
    channel TEXT NOT NULL,           -- email | webhook
    item_key TEXT NOT NULL,          -- stable per item, e.g. blocked:R00042:3f2a9c1b0d4e
    sent_at TEXT NOT NULL,
    PRIMARY KEY (channel, item_key)
);
CREATE TABLE alert_channels (
    channel TEXT PRIMARY KEY,
    last_attempt_at TEXT,            -- the last digest it tried to send
    last_sent_at TEXT,               -- the last digest it sent
    next_at TEXT NOT NULL,           -- no digest through this channel before then (hourly; sooner after a failure)
    last_error TEXT                  -- why the last attempt failed (redacted), NULL after a success
);
"""

MIGRATIONS: Sequence[Migration] = (
    Migration("0001_initial_schema", INITIAL_SCHEMA),
    Migration("0003_plan_skips", PLAN_SKIPS),
    Migration("0005_qbxml_message_items", MESSAGE_ITEMS),
    Migration("0006_postings_autoincrement", _postings_autoincrement),
    Migration("0007_posting_txns", POSTING_TXNS),
    Migration("0008_expense_card", EXPENSE_CARD),
    Migration("0009_report_fields", REPORT_FIELDS),
    Migration("0010_reimbursements", REIMBURSEMENTS),
    Migration("0011_alerts", ALERTS),
)

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL
)
"""


def run_step(conn: sqlite3.Connection, step: Step) -> None:
    """Run one migration step on an open transaction."""
    if callable(step):
        step(conn)
        return
    for statement in split_sql(step):
        conn.execute(statement)
