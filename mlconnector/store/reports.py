"""Reports and expenses in the state file: save with change detection, load back as models.

A report already stored and unchanged is left alone. A report that changed before QuickBooks saw it
is replaced and its unsent postings are dropped (it will be planned again). A report that changed
after a posting was sent or posted is *not* replaced: it is flagged "changed after posting" in the
state file and the audit log, and never posted again silently.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from enum import StrEnum

from mlconnector.errors import NotFoundError
from mlconnector.models import (
    Expense,
    PostingState,
    Report,
    cents_to_decimal,
    decimal_to_cents,
)
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent

# Postings in these states mean QuickBooks has (or may have) the report.
SEEN_BY_QUICKBOOKS = (PostingState.SENT, PostingState.IN_DOUBT, PostingState.POSTED)


class SaveOutcome(StrEnum):
    """What saving a pulled report did."""

    NEW = "new"
    UNCHANGED = "unchanged"
    CHANGED = "changed"
    CHANGED_AFTER_POSTING = "changed_after_posting"


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


@functools.lru_cache(maxsize=4096)  # a company uses a few hundred tag combinations, over and over
def _tags_json(tags: tuple[str, ...]) -> str:
    return json.dumps(list(tags))


def _insert_expenses(store: Store, report: Report) -> None:
    store.conn.executemany(
        "INSERT INTO expenses (report_id, position, transaction_id, date, merchant, amount_cents, currency,"
        " category, tags, comment, reimbursable, billable, card, receipt_url)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                report.report_id, n, e.transaction_id, e.date.isoformat(), e.merchant, decimal_to_cents(e.amount),
                e.currency, e.category, _tags_json(e.tags), e.comment, int(e.reimbursable), int(e.billable),
                e.card, e.receipt_url,
            )
            for n, e in enumerate(report.expenses)
        ],
    )


def _report_values(report: Report, fingerprint: str) -> tuple[object, ...]:
    return (
        report.name, report.submitter_email, report.submitter_name, report.status, report.currency,
        decimal_to_cents(report.total), report.policy_id, report.policy_name, _date(report.created),
        _date(report.submitted), _date(report.approved), fingerprint,
        json.dumps([list(pair) for pair in report.report_fields]) if report.report_fields else "",
    )


def _reimbursement(report: Report) -> tuple[str | None, int | None]:
    return _date(report.reimbursed), None if report.ach_reimbursed is None else int(report.ach_reimbursed)


def _only_cards_arrived(report: Report, old_fingerprint: str) -> bool:
    """True when the report differs from the stored one only by card identifiers that were not known
    before (reports pulled before the card was exported, migration 0008): not a change to what was posted."""
    if not any(e.card for e in report.expenses):
        return False
    without = replace(report, expenses=tuple(replace(e, card="") for e in report.expenses))
    return without.fingerprint() == old_fingerprint


def _record_cards(store: Store, report: Report, fingerprint: str) -> None:
    store.conn.executemany(
        "UPDATE expenses SET card = ? WHERE report_id = ? AND transaction_id = ?",
        [(e.card, report.report_id, e.transaction_id) for e in report.expenses],
    )
    store.conn.execute("UPDATE reports SET fingerprint = ? WHERE report_id = ?", (fingerprint, report.report_id))


def save_report(store: Store, report: Report, *, actor: str = "pull") -> SaveOutcome:
    """Store a pulled report (with its audit row, in one transaction) and say what changed."""
    now = store.timestamp()
    fingerprint = report.fingerprint()
    with store.atomic():
        row = store.conn.execute(
            "SELECT fingerprint, changed_fingerprint, total_cents, status, reimbursed FROM reports WHERE report_id = ?",
            (report.report_id,),
        ).fetchone()
        if row is None:
            store.conn.execute(
                "INSERT INTO reports (name, submitter_email, submitter_name, status, currency, total_cents,"
                " policy_id, policy_name, created, submitted, approved, fingerprint, report_fields, report_id,"
                " first_pulled_at, last_pulled_at, reimbursed, ach_reimbursed, payment_pending)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_report_values(report, fingerprint), report.report_id, now, now, *_reimbursement(report),
                 int(report.is_reimbursed)),
            )
            _insert_expenses(store, report)
            store.audit.append(
                AuditEvent.PULLED, actor=actor, report_id=report.report_id,
                detail={"total": str(report.total), "expenses": len(report.expenses), "status": report.status},
            )
            return SaveOutcome.NEW
        old_fingerprint, changed_fingerprint, old_total, old_status, old_reimbursed = row
        # Status and reimbursement are outside the fingerprint and follow Expensify in every case, even for a
        # report changed after posting.
        store.conn.execute(
            "UPDATE reports SET last_pulled_at = ?, status = ?, reimbursed = ?, ach_reimbursed = ? WHERE report_id = ?",
            (now, report.status, *_reimbursement(report), report.report_id))
        if report.is_reimbursed and not (str(old_status).casefold() == "reimbursed" or old_reimbursed):
            store.conn.execute("UPDATE reports SET payment_pending = 1 WHERE report_id = ?", (report.report_id,))
            store.audit.append(AuditEvent.REIMBURSED, actor=actor, report_id=report.report_id, detail={
                "reimbursed": _date(report.reimbursed), "ach": report.ach_reimbursed, "status": report.status})
        if fingerprint == old_fingerprint:
            # Fields outside the fingerprint (status, names) follow Expensify without re-planning.
            store.conn.execute(
                "UPDATE reports SET status = ?, submitter_name = ?, policy_id = ?, policy_name = ?, created = ?"
                " WHERE report_id = ?",
                (report.status, report.submitter_name, report.policy_id, report.policy_name, _date(report.created),
                 report.report_id),
            )
            return SaveOutcome.UNCHANGED
        if seen_by_quickbooks(store, report.report_id):
            if _only_cards_arrived(report, old_fingerprint):
                _record_cards(store, report, fingerprint)
                return SaveOutcome.UNCHANGED
            if changed_fingerprint == fingerprint:
                return SaveOutcome.CHANGED_AFTER_POSTING  # already flagged and audited
            store.conn.execute(
                "UPDATE reports SET changed_after_posting = 1, changed_fingerprint = ? WHERE report_id = ?",
                (fingerprint, report.report_id),
            )
            store.audit.append(
                AuditEvent.CHANGED_AFTER_POSTING, actor=actor, report_id=report.report_id,
                detail={
                    "posted_total": str(cents_to_decimal(old_total)), "new_total": str(report.total),
                    "action": "not posted again; check the QuickBooks transaction by hand",
                },
            )
            return SaveOutcome.CHANGED_AFTER_POSTING
        store.conn.execute(
            "UPDATE reports SET name = ?, submitter_email = ?, submitter_name = ?, status = ?, currency = ?,"
            " total_cents = ?, policy_id = ?, policy_name = ?, created = ?, submitted = ?, approved = ?,"
            # Nothing of it is in QuickBooks (any more): a flag from an earlier look is void, or the report
            # would never be planned again.
            " fingerprint = ?, report_fields = ?, changed_fingerprint = NULL, changed_after_posting = 0"
            " WHERE report_id = ?",
            (*_report_values(report, fingerprint), report.report_id),
        )
        store.conn.execute("DELETE FROM expenses WHERE report_id = ?", (report.report_id,))
        _insert_expenses(store, report)
        dropped = store.conn.execute("DELETE FROM postings WHERE report_id = ?", (report.report_id,)).rowcount
        store.audit.append(
            AuditEvent.CHANGED, actor=actor, report_id=report.report_id,
            detail={
                "old_total": str(cents_to_decimal(old_total)), "new_total": str(report.total),
                "unsent_postings_dropped": dropped,
            },
        )
        return SaveOutcome.CHANGED


def seen_by_quickbooks(store: Store, report_id: str) -> bool:
    """True when a posting of the report was sent, is in doubt or was posted (QuickBooks may have it)."""
    marks = ",".join("?" for _ in SEEN_BY_QUICKBOOKS)
    row = store.conn.execute(
        f"SELECT 1 FROM postings WHERE report_id = ? AND state IN ({marks}) LIMIT 1",
        (report_id, *SEEN_BY_QUICKBOOKS),
    ).fetchone()
    return row is not None


def _expense(row: tuple[object, ...]) -> Expense:
    return Expense(
        transaction_id=str(row[0]), date=dt.date.fromisoformat(str(row[1])), merchant=str(row[2]),
        amount=cents_to_decimal(int(str(row[3]))), currency=str(row[4]), category=str(row[5]),
        tags=tuple(json.loads(str(row[6]))), comment=str(row[7]), reimbursable=bool(row[8]), billable=bool(row[9]),
        card=str(row[10] or ""), receipt_url=str(row[11] or ""),
    )


def _optional_date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(str(value)) if value else None


def load_report(store: Store, report_id: str) -> Report:
    """The stored report with its expenses.

    Raises:
        NotFoundError: no report with that ID has been pulled.
    """
    row = store.conn.execute(
        "SELECT report_id, name, submitter_email, submitter_name, status, currency, total_cents, policy_id,"
        " policy_name, created, submitted, approved, report_fields, reimbursed, ach_reimbursed FROM reports"
        " WHERE report_id = ?",
        (report_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"report {report_id} is not in the state file", hint="run mlconnector pull first")
    expenses = tuple(
        _expense(r)
        for r in store.conn.execute(
            "SELECT transaction_id, date, merchant, amount_cents, currency, category, tags, comment,"
            " reimbursable, billable, card, receipt_url FROM expenses WHERE report_id = ? ORDER BY position",
            (report_id,),
        )
    )
    return Report(
        report_id=row[0], name=row[1], submitter_email=row[2], submitter_name=row[3], status=row[4],
        currency=row[5], total=cents_to_decimal(row[6]), policy_id=row[7], policy_name=row[8],
        created=_optional_date(row[9]), submitted=_optional_date(row[10]), approved=_optional_date(row[11]),
        expenses=expenses,
        report_fields=tuple((str(k), str(v)) for k, v in json.loads(row[12])) if row[12] else (),
        reimbursed=_optional_date(row[13]), ach_reimbursed=None if row[14] is None else bool(row[14]),
    )


def load_reports(store: Store, report_ids: Iterable[str]) -> Iterator[Report]:
    """Load several reports, in the order given."""
    for report_id in report_ids:
        yield load_report(store, report_id)


def unplanned_report_ids(store: Store) -> list[str]:
    """Reports with no posting yet that are not flagged "changed after posting"."""
    return [
        r[0]
        for r in store.conn.execute(
            "SELECT report_id FROM reports r WHERE changed_after_posting = 0"
            " AND NOT EXISTS (SELECT 1 FROM postings p WHERE p.report_id = r.report_id) ORDER BY report_id"
        )
    ]


def stored_fingerprint(store: Store, report_id: str) -> str | None:
    """The fingerprint the report was stored with, or None for a report never stored."""
    row = store.conn.execute("SELECT fingerprint FROM reports WHERE report_id = ?", (report_id,)).fetchone()
    return str(row[0]) if row else None


def changed_after_posting_flag(store: Store, report_id: str) -> bool | None:
    """Whether the report was edited in Expensify after QuickBooks got it; None when it is not stored."""
    row = store.conn.execute(
        "SELECT changed_after_posting FROM reports WHERE report_id = ?", (report_id,)).fetchone()
    return None if row is None else bool(row[0])


def reports_not_seen_by_quickbooks(store: Store) -> list[str]:
    """Reports with no posting sent, in doubt or posted (and not changed after posting)."""
    return [str(r[0]) for r in store.conn.execute(
        "SELECT report_id FROM reports r WHERE changed_after_posting = 0 AND NOT EXISTS ("
        " SELECT 1 FROM postings p WHERE p.report_id = r.report_id AND p.state IN ('sent', 'in_doubt', 'posted'))"
        " ORDER BY report_id")]


def reports_only_in(store: Store, states: Iterable[str]) -> list[str]:
    """Reports all of whose postings are in ``states`` (and not changed after posting)."""
    wanted = tuple(states)
    marks = ",".join("?" for _ in wanted)
    # From the postings in those states (the state index), each checked by its own report's postings: the
    # cost follows the open work, not the posted history.
    return [str(r[0]) for r in store.conn.execute(
        "SELECT DISTINCT p.report_id FROM postings p JOIN reports r ON r.report_id = p.report_id"
        f" WHERE p.state IN ({marks}) AND r.changed_after_posting = 0"
        " AND NOT EXISTS (SELECT 1 FROM postings q WHERE q.report_id = p.report_id"
        f"  AND +q.state NOT IN ({marks})) ORDER BY p.report_id", (*wanted, *wanted))]
