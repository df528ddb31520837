from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlconnector.errors import StoreError
from mlconnector.models import PostingState
from mlconnector.store import Store
from mlconnector.store.audit import AuditEvent
from mlconnector.store.migrations import MIGRATIONS, Migration, split_sql

PACKAGE = Path(__file__).resolve().parent.parent / "mlconnector"


def test_migrations_are_recorded_and_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Store.open(path)
    assert first.schema_version() == MIGRATIONS[-1].name
    first.close()
    again = Store.open(path)
    assert again.migrate() == []
    names = [r[0] for r in again.conn.execute("SELECT name FROM schema_migrations")]
    assert names == [m.name for m in MIGRATIONS]
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_a_failing_migration_rolls_back_and_stays_pending(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    broken = (*MIGRATIONS, Migration("0999_broken", "CREATE TABLE half (x INTEGER);\nSELECT * FROM no_such_table;"))
    with pytest.raises(StoreError, match="0999_broken failed and was rolled back"):
        Store.open(path, migrations=broken)
    store = Store.open(path)
    tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half" not in tables
    assert "0999_broken" not in {r[0] for r in store.conn.execute("SELECT name FROM schema_migrations")}
    store.close()


def test_a_state_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store.open(path, migrations=(*MIGRATIONS, Migration("9999_future", "CREATE TABLE future (x);"))).close()
    with pytest.raises(StoreError, match="newer ml-connector"):
        Store.open(path)


def test_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError):
        Store.open(path)


def _insert_report(store: Store, report_id: str) -> None:
    now = store.timestamp()
    store.conn.execute(
        "INSERT INTO reports (report_id, name, submitter_email, status, currency, total_cents, fingerprint,"
        " first_pulled_at, last_pulled_at) VALUES (?, 'r', 'a@b.c', 'APPROVED', 'USD', 100, 'f', ?, ?)",
        (report_id, now, now),
    )


def test_atomic_rolls_back_the_state_change_and_its_audit_row_together(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.atomic():
            _insert_report(store, "R1")
            store.audit.append(AuditEvent.PULLED, actor="test", report_id="R1")
            raise RuntimeError("crash between the two writes and the commit")
    assert store.conn.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 0
    assert store.audit.rows() == []


def test_atomic_commits_both_and_nests_as_savepoints(store: Store) -> None:
    with store.atomic():
        _insert_report(store, "R1")
        store.audit.append(AuditEvent.PULLED, actor="test", report_id="R1")
        with pytest.raises(ValueError):
            with store.atomic():
                _insert_report(store, "R2")
                raise ValueError("inner block fails")
    assert [r[0] for r in store.conn.execute("SELECT report_id FROM reports")] == ["R1"]
    assert [r.event for r in store.audit.rows()] == ["pulled"]


def test_sqlite_errors_inside_atomic_become_store_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="could not be updated"):
        with store.atomic():
            store.conn.execute("INSERT INTO no_such_table VALUES (1)")


def test_the_audit_table_refuses_updates_and_deletes(store: Store) -> None:
    with store.atomic():
        store.audit.append(AuditEvent.PULLED, actor="test", report_id="R1", detail={"n": 1})
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE audit SET event = 'posted'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM audit")
    assert store.audit.rows()[0].event == "pulled"


def test_no_code_path_updates_or_deletes_audit_rows() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text().upper()
        assert "UPDATE AUDIT" not in text and "DELETE FROM AUDIT" not in text, path


def test_audit_chain_verifies_and_names_the_first_edited_row(store: Store) -> None:
    with store.atomic():
        for n in range(4):
            store.audit.append(AuditEvent.PULLED, actor="test", report_id=f"R{n}", detail={"n": n})
    assert store.audit.verify() is None
    store.conn.execute("DROP TRIGGER audit_no_update")  # what a tamperer with the file could do
    store.conn.execute("UPDATE audit SET detail = '{\"n\": 99}' WHERE id = 3")
    assert store.audit.verify() == 3


def test_audit_details_are_redacted(store: Store) -> None:
    with store.atomic():
        store.audit.append(
            AuditEvent.PULLED, actor="t", detail={"partnerUserSecret": "abc123", "nested": {"password": "pw"}}
        )
    detail = store.audit.rows()[0].detail
    assert detail == {"nested": {"password": "********"}, "partnerUserSecret": "********"}


def test_audit_rows_filter_and_limit(store: Store) -> None:
    with store.atomic():
        for n in range(5):
            store.audit.append(AuditEvent.PULLED if n % 2 else AuditEvent.QUEUED, actor="t", report_id=f"R{n % 2}")
    assert [r.id for r in store.audit.rows(report_id="R1")] == [2, 4]
    assert [r.id for r in store.audit.rows(event="queued")] == [1, 3, 5]
    assert [r.id for r in store.audit.rows(limit=2)] == [4, 5]


def test_posting_counts_list_every_state(store: Store) -> None:
    assert store.posting_counts() == dict.fromkeys(PostingState, 0)


def test_settings_round_trip(store: Store) -> None:
    store.set_setting("owner_id", "{A}")
    store.set_setting("owner_id", "{B}")
    assert store.get_setting("owner_id") == "{B}"
    assert store.get_setting("missing", "d") == "d"


def test_split_sql_keeps_trigger_bodies_whole() -> None:
    statements = list(split_sql("CREATE TABLE a (x);\nCREATE TRIGGER t BEFORE DELETE ON a\nBEGIN\n SELECT 1;\nEND;\n"))
    assert len(statements) == 2 and statements[1].endswith("END;")


def test_the_fingerprint_of_a_report_never_changes_across_versions() -> None:
    # Stored fingerprints decide "changed after posting": a new way to compute them must give the same value
    # (this one was computed by the version of 2026-11-29 before the fingerprint was made faster).
    import datetime as dt
    from decimal import Decimal

    from mlconnector.models import Expense, Report

    e = Expense("T1", dt.date(2026, 3, 1), "Café Zürich", Decimal("12.50"), "Travel", tags=("Sales", "Acme:Project X"),
                comment="x", card="4242")
    f = Expense("T2", dt.date(2026, 3, 2), "Uber", Decimal("-3.00"), "Travel", reimbursable=False, billable=True)
    report = Report("R00X9oNOn2MO", "Trip", "ann@example.com", "Approved", "USD", Decimal("9.50"), (e, f),
                    submitted=dt.date(2026, 3, 2), approved=dt.date(2026, 3, 3), report_fields=(("Department", "Sales"),))
    assert report.fingerprint() == "315f89fd4041becd7c7fb90095aedd45a4c4ddf4a13b18b87be080dd19d129e1"
