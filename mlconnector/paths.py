"""Where ml-connector keeps its files: config.toml, state.db and logs/, and who may read them.

Precedence: ``--home``/``--config`` options, then ``MLCONNECTOR_HOME``/``MLCONNECTOR_CONFIG``, then the
platform's folders (on Windows ``%LOCALAPPDATA%\\mlconnector``) via platformdirs.

On POSIX the files ml-connector writes (state.db and its -wal/-shm, the log files) are readable by
their owner only (0600) and the folders it creates 0700, whatever the umask: files are created with
that mode and chmod-ed after, and existing ones with looser modes are tightened when opened. Folders
that already existed are left alone, except ``logs/``. A refused chmod (a read-only home, a file of
another user) is logged at debug and never fails the command. On Windows nothing is changed: the
per-user profile folders are private already.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mlconnector"
ENV_HOME = "MLCONNECTOR_HOME"
ENV_CONFIG = "MLCONNECTOR_CONFIG"
ENV_EXPENSIFY_SECRET = "MLCONNECTOR_EXPENSIFY_SECRET"
ENV_QBWC_PASSWORD = "MLCONNECTOR_QBWC_PASSWORD"
ENV_SMTP_PASSWORD = "MLCONNECTOR_SMTP_PASSWORD"
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700

log = logging.getLogger("mlconnector.paths")


@dataclass(frozen=True)
class Paths:
    """The files of one ml-connector installation."""

    home: Path
    config_file: Path
    state_file: Path
    log_dir: Path

    @property
    def lock_file(self) -> Path:
        """The lock that keeps two `pull` runs from overlapping."""
        return self.state_file.with_name(self.state_file.name + ".lock")


def resolve_paths(
    home: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Paths:
    """Work out the installation's files from options, then environment, then platform defaults."""
    env = os.environ if environ is None else environ
    home_value = home or env.get(ENV_HOME) or None
    config_value = config or env.get(ENV_CONFIG) or None
    if home_value:
        base = Path(home_value).expanduser()
        config_dir = data_dir = base
    else:
        import platformdirs  # only needed when no home is given

        base = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
        config_dir = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
        data_dir = base
    config_file = Path(config_value).expanduser() if config_value else config_dir / "config.toml"
    return Paths(
        home=base,
        config_file=config_file,
        state_file=data_dir / "state.db",
        log_dir=data_dir / "logs",
    )


def _posix() -> bool:
    return os.name == "posix"


def restrict(path: Path, mode: int, *, exact: bool = False) -> None:
    """Take away from ``path`` every permission bit ``mode`` does not grant (POSIX only).

    With ``exact`` the file gets ``mode`` itself (for files just created, whatever the umask took).
    A missing file is skipped; a refused chmod is logged at debug, never raised.
    """
    if not _posix():
        return
    try:
        current = stat.S_IMODE(path.stat().st_mode)
        wanted = mode if exact else current & mode
        if wanted != current:
            os.chmod(path, wanted)
    except FileNotFoundError:
        return
    except OSError as exc:
        log.debug("could not restrict %s to %o: %s", path, mode, exc)


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 on POSIX; folders that exist are left as they are.

    Raises:
        OSError: a folder could not be created (as ``Path.mkdir`` would).
    """
    if not _posix():
        path.mkdir(parents=True, exist_ok=True)
        return
    missing = []
    current = path
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):  # top down, each created 0700 (minus the umask) and then set to 0700
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # created meanwhile by someone else: not ours to change
        restrict(folder, PRIVATE_DIR, exact=True)


def create_private_file(path: Path) -> None:
    """Make sure the file at ``path`` exists readable by its owner only, before something else opens it.

    A new file is created empty with mode 0600 (then set to exactly 0600, whatever the umask); an
    existing one loses its group and other permissions. POSIX only; failures are logged at debug and
    left to whoever opens the file next, which reports them properly.
    """
    if not _posix():
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        if path.is_file():
            restrict(path, PRIVATE_FILE)
        return
    except OSError as exc:
        log.debug("could not create %s: %s", path, exc)
        return
    os.close(fd)
    restrict(path, PRIVATE_FILE, exact=True)
