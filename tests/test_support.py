"""The lock, logging redaction and passwords."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mlconnector.errors import LockedError
from mlconnector.passwords import hash_password, looks_like_hash, verify_password
from mlconnector.redact import redact_text, register_secret
from mlconnector.services.locking import exclusive
from mlconnector.services.logs import setup_logging


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "state.db.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from mlconnector.services.locking import exclusive
            with exclusive(Path({str(lock)!r})):
                print("held", flush=True)
                time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match="another mlconnector pull is running"):
            with exclusive(lock):
                pass
    finally:
        holder.kill()
        holder.wait()
    # The OS frees the lock of a killed process: no stale lock.
    deadline = time.monotonic() + 5
    while True:
        try:
            with exclusive(lock):
                break
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_log_file_never_holds_a_registered_secret(tmp_path: Path) -> None:
    register_secret("sup3r-secret-value")
    setup_logging(tmp_path / "logs")
    log = logging.getLogger("mlconnector.test")
    log.info("posting with %s", "sup3r-secret-value")
    log.info('{"partnerUserSecret":"other-secret"}')
    log.info("<strPassword>pw-in-soap</strPassword>")
    for handler in logging.getLogger("mlconnector").handlers:
        handler.flush()
    text = (tmp_path / "logs" / "mlconnector.log").read_text()
    assert "sup3r-secret-value" not in text and "other-secret" not in text and "pw-in-soap" not in text
    assert text.count("********") == 3


def test_redact_text_masks_url_encoded_secrets() -> None:
    assert "abc" not in redact_text("requestJobDescription=%7B%22partnerUserSecret%22%3A%22abc%22%7D")


def test_password_hashes_are_salted_and_verify_in_constant_time() -> None:
    a, b = hash_password("pw"), hash_password("pw")
    assert a != b and looks_like_hash(a)
    assert verify_password("pw", a) and verify_password("pw", b)
    assert not verify_password("pW", a)
    assert not verify_password("pw", "scrypt$garbage")
    assert not verify_password("pw", "pw")


def test_spyne_errors_go_to_the_log_file_on_one_line_and_never_to_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(tmp_path / "logs")
    try:
        raise ValueError("invalid literal for int() with base 10: 'abc'")
    except ValueError:
        logging.getLogger("spyne.protocol.soap.soap11").exception("fault while parsing <strPassword>pw</strPassword>")
    for handler in logging.getLogger("mlconnector").handlers:
        handler.flush()
    text = (tmp_path / "logs" / "mlconnector.log").read_text()
    assert "Traceback" not in text and "ValueError: invalid literal" in text and "pw<" not in text
    assert capsys.readouterr().err == ""
