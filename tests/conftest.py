"""Hermetic tests: no outside network, a clean environment, and a temporary MLCONNECTOR_HOME."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlconnector.cli import app
from mlconnector.store import Store

REPO = Path(__file__).resolve().parent.parent


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = address[0]
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX paths and socketpairs stay on the machine


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to servers they start on loopback, and to nothing else."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: object) -> object:
        if not _is_loopback(address):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No MLCONNECTOR_* variable leaks in from the developer's shell; home is a temporary folder."""
    for name in list(os.environ):
        if name.startswith("MLCONNECTOR_") and name != "MLCONNECTOR_REFERENCE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLCONNECTOR_HOME", str(tmp_path / "home"))
    yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The temporary MLCONNECTOR_HOME of this test."""
    return tmp_path / "home"


@pytest.fixture
def store() -> Iterator[Store]:
    """A migrated in-memory state file."""
    s = Store.memory()
    yield s
    s.close()


@pytest.fixture
def cli(home: Path) -> Iterator[CliRunner]:
    """A CLI runner on a home made by `mlconnector init --non-interactive`."""
    runner = CliRunner()
    result = runner.invoke(app, ["init", "--non-interactive"], env={"MLCONNECTOR_QBWC_PASSWORD": "pw"})
    assert result.exit_code == 0, result.output
    yield runner


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """Intuit's schemas and the other reference files, or a skip saying where they were expected."""
    path = Path(os.environ.get("MLCONNECTOR_REFERENCE_DIR", REPO.parent / "shared" / "reference"))
    if not path.is_dir():
        message = f"reference files not found at {path} (set MLCONNECTOR_REFERENCE_DIR)"
        if os.environ.get("CI"):
            # In CI every schema check must run: a missing folder is a broken setup, not a skip.
            pytest.fail(message)
        pytest.skip(message)
    return path
