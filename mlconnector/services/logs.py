"""Logging to a rotating file under ``<home>/logs/`` (and stderr with -v), secrets redacted.

On POSIX ``logs/`` is 0700 and every log file 0600, also the ones a rollover starts (see paths.py).
"""

from __future__ import annotations

import logging
import logging.handlers
from io import TextIOWrapper
from pathlib import Path

from mlconnector.paths import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    create_private_file,
    make_private_dir,
    restrict,
)
from mlconnector.redact import redact_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ZonedFormatter(logging.Formatter):
    """Times as local ISO 8601 with the zone (``2026-11-29T17:03:12.345+01:00``): a log read after a clock
    change, or beside the audit log (UTC), still lines up."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        import datetime as dt

        return dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


class RedactingFilter(logging.Filter):
    """Masks secrets in every record, whatever logger or argument they came through.

    Spyne logs client mistakes (malformed SOAP) with full tracebacks; those are folded into the one
    line, so anonymous junk cannot fill the log. Our own errors keep their tracebacks.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name.startswith("spyne") and record.exc_info and record.exc_info[1] is not None:
            message = f"{message} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            record.exc_info = None
            record.exc_text = None
        record.msg = redact_text(message)
        record.args = None
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files are readable by their owner only (created 0600 before they are opened)."""

    def _open(self) -> TextIOWrapper:
        create_private_file(Path(self.baseFilename))
        return super()._open()


def setup_logging(log_dir: Path | None, *, verbose: int = 0) -> None:
    """Send the ``mlconnector`` loggers to a rotating file (1 MB x 5) and, with -v, to stderr."""
    root = logging.getLogger("mlconnector")
    root.setLevel(logging.DEBUG)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    redacting = RedactingFilter()
    if log_dir is not None:
        try:
            make_private_dir(log_dir)
            restrict(log_dir, PRIVATE_DIR)  # ours even when it existed: tighten a looser one
            for old in log_dir.glob("mlconnector.log.*"):  # the rotated files, from before this version
                restrict(old, PRIVATE_FILE)
            file_handler = PrivateRotatingFileHandler(
                log_dir / "mlconnector.log", maxBytes=1_000_000, backupCount=5, encoding="utf-8"
            )
        except OSError:
            file_handler = None  # an unwritable log folder must not stop the work itself
        if file_handler is not None:
            file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            file_handler.setFormatter(ZonedFormatter(LOG_FORMAT))
            file_handler.addFilter(redacting)
            root.addHandler(file_handler)
    if not root.handlers:
        # No log file (an unwritable or absent home): records go nowhere, rather than to Python's last-resort
        # handler, which prints tracebacks on the user's screen.
        root.addHandler(logging.NullHandler())
    if verbose:
        console = logging.StreamHandler()
        console.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        console.addFilter(redacting)
        root.addHandler(console)
    root.propagate = False
    # Spyne would otherwise reach stderr through Python's last-resort handler, tracebacks and all.
    spyne = logging.getLogger("spyne")
    spyne.setLevel(logging.WARNING)
    spyne.propagate = False
    for handler in list(spyne.handlers):
        spyne.removeHandler(handler)
    for handler in root.handlers:
        spyne.addHandler(handler)
