"""A home this user cannot write (issue #14, point 3): reading commands still read; writing ones say it is a
permissions problem in one line, never a traceback, never "restore a backup"."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.store import Store

real_access = os.access


@pytest.fixture
def read_only(home: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The home as a user without write access sees it (permissions alone do not stop root, who runs CI)."""
    stamp = (home / "state.db").stat().st_mtime_ns

    def access(path: str | os.PathLike[str], mode: int, **kw: object) -> bool:
        if mode & os.W_OK and Path(path).resolve().is_relative_to(home.resolve()):
            return False
        return real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    yield home
    assert (home / "state.db").stat().st_mtime_ns == stamp  # nothing was written


@pytest.mark.parametrize("command", [["status"], ["audit"], ["audit", "verify"], ["map", "list"], ["status", "--json"]])
def test_reading_commands_work_in_a_read_only_home(read_only: Path, command: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Path] = []
    original = Store.open_read_only.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Store], /, path: Path, **kw: object) -> Store:
        opened.append(Path(path))
        return original(cls, path, **kw)  # type: ignore[no-any-return]

    monkeypatch.setattr(Store, "open_read_only", classmethod(spy))
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert "backup" not in result.output and "Traceback" not in result.output
    assert opened == [read_only / "state.db"]


def test_pull_in_a_read_only_home_is_one_line_about_permissions(
    read_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import filelock

    def refuse(self: filelock.FileLock, *args: object, **kw: object) -> None:
        raise PermissionError(13, "Permission denied", str(read_only / "state.db.lock"))

    monkeypatch.setattr(filelock.FileLock, "acquire", refuse)
    (read_only / "config.toml").write_text('[expensify]\npartner_user_id = "aa"\nstart_date = "2026-01-01"\n')
    result = CliRunner().invoke(app, ["pull"], env={"MLCONNECTOR_EXPENSIFY_SECRET": "s"})
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("Error: cannot create the lock file") and "give it write access" in lines[0]


def test_a_state_file_needing_an_upgrade_is_not_read_half_way(tmp_path: Path) -> None:
    from mlconnector.errors import StoreError
    from mlconnector.store.migrations import MIGRATIONS

    path = tmp_path / "state.db"
    Store.open(path, migrations=MIGRATIONS[:-1]).close()
    with pytest.raises(StoreError, match="needs an upgrade"):
        Store.open_read_only(path)
    Store.open(path).close()
    store = Store.open_read_only(path)
    try:
        assert store.schema_version() == MIGRATIONS[-1].name
    finally:
        store.close()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores file permissions")
def test_a_truly_read_only_home_still_shows_status(home: Path, cli: CliRunner) -> None:
    for path in (home, *home.rglob("*")):
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        result = CliRunner().invoke(app, ["status"])
        assert result.exit_code == 0 and "backup" not in result.output, result.output
    finally:
        for path in (home, *home.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)
