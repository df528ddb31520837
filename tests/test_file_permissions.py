"""On POSIX, state.db (with its -wal/-shm) and the log files are 0600 and logs/ 0700, whatever the umask.

Files and folders that exist with looser modes are tightened when ml-connector opens them; a refused
chmod never fails a command. In-memory stores touch no file. (Windows: nothing is changed.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector import paths as paths_module
from mlconnector.cli import app
from mlconnector.errors import StoreError
from mlconnector.services.logs import PrivateRotatingFileHandler, setup_logging
from mlconnector.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX; Windows is left as it is")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The loosest umask (0): whatever ml-connector gets right here, it does not owe to the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def no_file_logging() -> Iterator[None]:
    """Close the log file handler a test set up, so later tests do not write into its folder."""
    yield
    setup_logging(None)


def test_init_in_a_new_home_makes_every_file_owner_only(
    home: Path, open_umask: None, no_file_logging: None
) -> None:
    assert not home.exists()
    result = CliRunner().invoke(app, ["init", "--non-interactive"], env={"MLCONNECTOR_QBWC_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    assert mode(home) == 0o700
    assert mode(home / "logs") == 0o700
    assert mode(home / "logs" / "mlconnector.log") == 0o600
    assert mode(home / "config.toml") == 0o600
    assert mode(home / "state.db") == 0o600


def test_the_state_file_and_its_wal_and_shm_are_0600_while_open(tmp_path: Path, open_umask: None) -> None:
    db = tmp_path / "new" / "deeper" / "state.db"
    store = Store.open(db)
    try:
        with store.atomic():
            store.set_setting("probe", "1")
        wal, shm = db.with_name("state.db-wal"), db.with_name("state.db-shm")
        assert wal.exists() and shm.exists()
        assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        store.close()
    assert mode(db.parent) == mode(db.parent.parent) == 0o700  # the folders it created


def test_an_existing_folder_above_the_state_file_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    Store.open(shared / "state.db").close()
    assert mode(shared) == 0o755 and mode(shared / "state.db") == 0o600


def test_a_looser_state_file_and_wal_shm_are_tightened_when_opened(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store.open(db).close()
    db.chmod(0o644)
    other = sqlite3.connect(db)  # another process with the file open keeps its -wal/-shm in place
    try:
        other.execute("PRAGMA journal_mode = WAL")
        other.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        other.commit()
        wal, shm = db.with_name("state.db-wal"), db.with_name("state.db-shm")
        wal.chmod(0o666)
        shm.chmod(0o644)
        store = Store.open(db)
        try:
            assert (mode(db), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        finally:
            store.close()
    finally:
        other.close()


def test_a_read_only_state_file_is_not_made_writable(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store.open(db).close()
    db.chmod(0o440)
    with contextlib.suppress(StoreError):  # root still opens it; anyone else gets a StoreError
        Store.open(db).close()
    assert mode(db) == 0o400  # group read taken away, nothing added


def test_logs_folder_and_log_files_are_private_and_tightened(tmp_path: Path, no_file_logging: None) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(0o755)
    for name in ("mlconnector.log", "mlconnector.log.1", "mlconnector.log.5"):
        (logs / name).write_text("old\n")
        (logs / name).chmod(0o644)
    setup_logging(logs)
    logging.getLogger("mlconnector.test").info("hello")
    assert mode(logs) == 0o700
    assert {p.name: mode(p) for p in logs.iterdir()} == {
        "mlconnector.log": 0o600, "mlconnector.log.1": 0o600, "mlconnector.log.5": 0o600}


def test_a_rollover_starts_the_new_log_file_owner_only(tmp_path: Path, open_umask: None) -> None:
    log_file = tmp_path / "mlconnector.log"
    handler = PrivateRotatingFileHandler(log_file, maxBytes=200, backupCount=2, encoding="utf-8")
    try:
        logger = logging.getLogger("mlconnector.test.rollover")
        logger.addHandler(handler)
        logger.propagate = False
        for n in range(20):
            logger.warning("line %d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["mlconnector.log", "mlconnector.log.1", "mlconnector.log.2"]
    assert all(mode(p) == 0o600 for p in files)


def test_a_refused_chmod_never_fails_and_is_logged_at_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, no_file_logging: None
) -> None:
    db = tmp_path / "state.db"
    Store.open(db).close()
    db.chmod(0o644)
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)

    def refuse(path: object, mode: int, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(os, "chmod", refuse)
    with caplog.at_level(logging.DEBUG, logger="mlconnector.paths"):
        Store.open(db).close()
        setup_logging(logs)
    assert mode(db) == 0o644 and mode(logs) == 0o755  # left as they were, and no error
    assert any("could not restrict" in r.getMessage() and "state.db" in r.getMessage() for r in caplog.records)


def test_an_in_memory_store_touches_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store.memory()
    with store.atomic():
        store.set_setting("probe", "1")
    assert store.get_setting("probe") == "1"
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_on_windows_nothing_is_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths_module, "_posix", lambda: False)
    old = os.umask(0o022)
    try:
        Store.open(tmp_path / "new" / "state.db").close()
    finally:
        os.umask(old)
    assert mode(tmp_path / "new") == 0o755 and mode(tmp_path / "new" / "state.db") == 0o644
