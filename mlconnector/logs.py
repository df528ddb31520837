"""Logging to a rotating file under ``<home>/logs/`` (and stderr with -v), secrets redacted."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from mlconnector.redact import redact_text

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
            log_dir.mkdir(parents=True, exist_ok=True)
            file_handler = logging.handlers.RotatingFileHandler(
                log_dir / "mlconnector.log", maxBytes=1_000_000, backupCount=5, encoding="utf-8"
            )
        except OSError:
            file_handler = None  # an unwritable log folder must not stop the work itself
        if file_handler is not None:
            file_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            file_handler.addFilter(redacting)
            root.addHandler(file_handler)
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
