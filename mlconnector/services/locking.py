"""A cross-process lock so two `pull` runs (Task Scheduler overlap) never run at once.

filelock handles both POSIX fcntl and Windows msvcrt locking, and the OS frees the lock when a
process dies, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlconnector.errors import LockedError, StoreError


@contextmanager
def exclusive(path: Path, *, what: str = "mlconnector pull", timeout: float = 0) -> Iterator[None]:
    """Hold the lock at ``path`` for the block, or raise LockedError at once (after ``timeout`` s).

    Raises:
        LockedError: another process holds the lock.
    """
    import filelock

    lock = filelock.FileLock(str(path), timeout=timeout)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except PermissionError:
        raise StoreError(f"cannot create the lock file {path}: permission denied",
                         hint=f"this user cannot write {path.parent}: give it write access to that folder (or run "
                              "ml-connector as the user who ran mlconnector init)") from None
    except filelock.Timeout:
        raise LockedError(
            f"another {what} is running (lock file {path})",
            hint="wait for it to finish; the lock is freed when that process ends",
        ) from None
    try:
        yield
    finally:
        lock.release()
