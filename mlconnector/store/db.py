"""The SQLite state file: migrations, ``atomic()``, and the queries every command shares.

``Store(conn)`` wraps one connection in autocommit mode; ``atomic()`` opens ``BEGIN IMMEDIATE`` at
the outermost level and savepoints inside, so a state change and its audit row commit or roll back
together. SQL is always parameterized.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlconnector.errors import StoreError
from mlconnector.models import PostingState
from mlconnector.paths import (
    PRIVATE_FILE,
    create_private_file,
    make_private_dir,
    restrict,
)
from mlconnector.store.audit import AuditLog
from mlconnector.store.migrations import BOOKKEEPING, MIGRATIONS, Migration, run_step

# The state file is the record of what QuickBooks has: deleting it would allow duplicates.
DAMAGED_HINT = (
    "check the folder's permissions, or restore state.db from a backup (sqlite3 state.db \".recover\" can save"
    " a damaged one); do not delete it: it is the record of what was posted"
)


def restrict_state_files(path: Path) -> None:
    """Owner-only (0600) state file, -wal and -shm on POSIX, tightening ones left looser (never raises).

    SQLite creates -wal and -shm with the state file's own mode, but ones made before the state file
    was tightened (or by an older ml-connector) keep theirs until the last connection removes them.
    """
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        if path.with_name(name).is_file():
            restrict(path.with_name(name), PRIVATE_FILE)


def _writable(path: Path) -> bool:
    """The state file (or, before it exists, its folder) and its folder can be written by this user."""
    import os

    folder = path.parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def _access_hint(path: Path) -> str:
    return (f"this user cannot write {path.parent}: give it write access to that folder (or run ml-connector as "
            "the user who ran mlconnector init); nothing is wrong with the state file itself")


def utcnow() -> dt.datetime:
    """The current time in UTC (the default clock; tests inject their own)."""
    return dt.datetime.now(dt.timezone.utc)


class Store:
    """One open state file.

    Args:
        conn: an sqlite3 connection; the store switches it to autocommit and manages transactions.
        now: the clock used for timestamps.
    """

    def __init__(self, conn: sqlite3.Connection, now: Callable[[], dt.datetime] = utcnow) -> None:
        conn.isolation_level = None
        conn.execute("PRAGMA foreign_keys = ON")
        self.conn = conn
        self.now = now
        self.audit = AuditLog(conn, now)
        self._depth = 0

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        now: Callable[[], dt.datetime] = utcnow,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Store:
        """Open (creating if needed) the state file at ``path`` in WAL mode and migrate it.

        Raises:
            StoreError: the file cannot be opened, is not a state file, or a migration failed.
        """
        on_disk = str(path) not in (":memory:", "")
        try:
            if on_disk:
                make_private_dir(Path(path).parent)
                create_private_file(Path(path))  # 0600 before SQLite opens it; its -wal/-shm copy the mode
            conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            if str(path) != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except (sqlite3.Error, OSError) as exc:
            hint = _access_hint(Path(path)) if on_disk and not _writable(Path(path)) else DAMAGED_HINT
            raise StoreError(f"cannot open the state file {path}: {exc}", hint=hint) from exc
        store = cls(conn, now)
        try:
            store.migrate(migrations)
        except StoreError as exc:
            if on_disk and not _writable(Path(path)):
                conn.close()
                raise StoreError(f"cannot write the state file {path}", hint=_access_hint(Path(path))) from exc
            raise
        if on_disk:
            restrict_state_files(Path(path))
        return store

    @classmethod
    def open_read_only(
        cls, path: Path, *, now: Callable[[], dt.datetime] = utcnow, migrations: Sequence[Migration] = MIGRATIONS,
    ) -> Store:
        """Open an existing state file only to read it (``status``, ``audit``, ``map list`` in a read-only folder).

        Nothing is created or migrated; a file that still needs a migration is refused (reading it with
        today's queries could fail half-way).

        Raises:
            StoreError: the file cannot be read, is not a state file, or needs a migration.
        """
        uri = Path(path).resolve().as_uri()  # file:///… (percent-encoded), which SQLite reads on every OS
        conn = None
        # mode=ro reads a WAL file when its -shm can be used; in a folder nobody can write, nothing can change
        # the file either, so reading it as immutable is safe.
        wal = Path(str(path) + "-wal")
        has_changes = wal.exists() and wal.stat().st_size > 0
        # immutable=1 ignores the write-ahead log: only safe when it holds nothing not yet folded in.
        for query in ("mode=ro",) if has_changes else ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=30, check_same_thread=False)
                applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
                break
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                error: Exception = exc
        if conn is None:
            if has_changes:
                raise StoreError(f"the state file {path} has changes not yet folded in (state.db-wal), which this user "
                                 "cannot read from a folder it cannot write",
                                 hint="run it as the user that runs mlconnector serve, or once with write access")
            raise StoreError(f"cannot read the state file {path}: {error}", hint=_access_hint(Path(path))) from error
        pending = [m.name for m in migrations if m.name not in applied]
        if pending:
            conn.close()
            raise StoreError(f"the state file {path} needs an upgrade ({pending[-1]}) that cannot be written here",
                             hint=_access_hint(Path(path)))
        store = cls(conn, now)
        return store

    @classmethod
    def memory(cls, now: Callable[[], dt.datetime] = utcnow) -> Store:
        """A fully migrated in-memory store (tests, dry runs)."""
        return cls.open(":memory:", now=now)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def timestamp(self) -> str:
        """The store clock's current time as ISO text (what every ``*_at`` column holds)."""
        return self.now().isoformat(timespec="milliseconds")

    @contextmanager
    def atomic(self, *, keep_done: bool = False) -> Iterator[Store]:
        """Run a block in one transaction (nested blocks become savepoints); yields the store itself.

        ``keep_done`` (outermost block only): when the block fails, what its nested blocks completed is
        committed rather than rolled back. For batches of units that each write in their own nested block:
        a failing unit's savepoint has rolled it back already, and the units before it stay whole.

        Raises:
            StoreError: SQLite failed; the whole block was rolled back (or, with ``keep_done``, all but
                the completed nested blocks).
        """
        if self._depth == 0:
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"
        else:
            name = f"sp{self._depth}"
            begin, commit, rollback = f"SAVEPOINT {name}", f"RELEASE {name}", f"ROLLBACK TO {name}; RELEASE {name}"
        try:
            self.conn.execute(begin)
        except sqlite3.Error as exc:
            raise StoreError(f"the state file is busy or read-only: {exc}") from exc
        self._depth += 1
        try:
            yield self
        except BaseException as exc:
            self._depth -= 1
            keep = keep_done and self._depth == 0 and not isinstance(exc, sqlite3.Error)
            for statement in (commit if keep else rollback).split("; "):
                self.conn.execute(statement)
            if isinstance(exc, sqlite3.Error):
                hint = ("the state file is read-only: clear its read-only attribute (or give this user write "
                        "permission on it and its folder)") if "readonly" in str(exc).lower() else None
                raise StoreError(f"the state file could not be updated: {exc}", hint=hint) from exc
            raise
        else:
            self._depth -= 1
            self.conn.execute(commit)

    def migrate(self, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
        """Apply pending migrations in order, each with its record in one transaction.

        Returns the names applied. Raises StoreError when a migration fails (it is rolled back and
        stays pending) or when the file was written by a newer ml-connector.
        """
        try:
            self.conn.execute(BOOKKEEPING)
            applied = {row[0] for row in self.conn.execute("SELECT name FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"not an ml-connector state file: {exc}", hint=DAMAGED_HINT) from exc
        known = {m.name for m in migrations}
        unknown = sorted(applied - known)
        if unknown:
            raise StoreError(
                f"the state file was written by a newer ml-connector (migration {unknown[-1]})",
                hint="upgrade ml-connector: pip install --upgrade mlconnector",
            )
        done = []
        for migration in migrations:
            if migration.name in applied:
                continue
            try:
                with self.atomic():
                    run_step(self.conn, migration.step)
                    self.conn.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                        (migration.name, self.timestamp()),
                    )
            except (StoreError, sqlite3.Error, ValueError) as exc:
                raise StoreError(f"migration {migration.name} failed and was rolled back: {exc}") from exc
            done.append(migration.name)
        return done

    # Above this the write-ahead log is folded back into the state file (about 4 MB of 4 KiB pages).
    CHECKPOINT_PAGES = 1000

    def defer_checkpoints(self) -> None:
        """Stop SQLite folding the write-ahead log back at commit time; :meth:`checkpoint_if_due` does it.

        A checkpoint copies pages and syncs the file: done inside a commit it landed in whichever Web Connector
        call crossed the threshold (100 ms and more with a large history). ``serve`` runs it after the answer
        has gone out instead.
        """
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._deferred = True

    def checkpoint_if_due(self) -> bool:
        """Fold the write-ahead log back when it has grown past :attr:`CHECKPOINT_PAGES`; True when it did.

        PASSIVE: never waits for readers or writers (a pull in another process goes on); what it cannot copy
        now is copied next time.
        """
        if not getattr(self, "_deferred", False) or self._depth:
            return False
        row = self.conn.execute("PRAGMA database_list").fetchone()
        wal = Path(str(row[2]) + "-wal") if row and row[2] else None
        try:
            size = wal.stat().st_size if wal is not None else 0
        except OSError:
            return False
        page = int(self.conn.execute("PRAGMA page_size").fetchone()[0])
        if size < self.CHECKPOINT_PAGES * page:
            return False
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return True

    def schema_version(self) -> str:
        """The name of the newest applied migration."""
        row = self.conn.execute("SELECT name FROM schema_migrations ORDER BY name DESC LIMIT 1").fetchone()
        return str(row[0]) if row else "none"

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        """A value from the settings table."""
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_setting(self, key: str, value: str) -> None:
        """Store a value in the settings table."""
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_setting(self, key: str) -> None:
        """Remove a value from the settings table (nothing happens when it is absent)."""
        self.conn.execute("DELETE FROM settings WHERE key = ?", (key,))

    def open_posting_counts(self) -> dict[PostingState, int]:
        """Like :meth:`posting_counts`, but only the states work is waiting in (queued, blocked, sent, in doubt);
        posted and failed read 0. Through the state index, so it costs the same with 50,000 posted postings."""
        counts = dict.fromkeys(PostingState, 0)
        open_states = (PostingState.QUEUED, PostingState.BLOCKED, PostingState.SENT, PostingState.IN_DOUBT)
        for state, count in self.conn.execute(
                "SELECT state, COUNT(*) FROM postings WHERE state IN (?, ?, ?, ?) GROUP BY state",
                tuple(s.value for s in open_states)):
            counts[PostingState(state)] = int(count)
        return counts

    def posting_counts(self) -> dict[PostingState, int]:
        """How many postings are in each state (every state present, zeros included)."""
        counts = dict.fromkeys(PostingState, 0)
        for state, count in self.conn.execute("SELECT state, COUNT(*) FROM postings GROUP BY state"):
            counts[PostingState(state)] = int(count)
        return counts
