"""`check` tests the certificate [qbwc] certfile/keyfile name (issue #14): a usable pair, not expired, issued
for the host name of public_url; `serve` uses the same files by default."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from mlconnector.config import QbwcConfig
from mlconnector.services.check import _certificate_check

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")
NOW = dt.datetime.now(dt.timezone.utc)


def _pair(folder: Path, name: str, host: str = "books.example.lan", days: int = 365) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days), "-subj",
                    f"/CN={host}", "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_nothing_configured_is_skipped() -> None:
    check = _certificate_check(QbwcConfig(), NOW)
    assert check.skipped and "[qbwc] certfile" in check.detail


def test_a_good_pair_for_the_public_host_passes_with_its_expiry(tmp_path: Path) -> None:
    cert, key = _pair(tmp_path, "good")
    check = _certificate_check(QbwcConfig(certfile=str(cert), keyfile=str(key),
                                          public_url="https://books.example.lan:8443/qbwc"), NOW)
    assert check.ok and "valid until" in check.detail


def test_an_expired_certificate_a_wrong_host_and_a_mismatched_key_fail_with_the_fix(tmp_path: Path) -> None:
    cert, key = _pair(tmp_path, "good")
    later = NOW + dt.timedelta(days=400)
    expired = _certificate_check(QbwcConfig(certfile=str(cert), keyfile=str(key)), later)
    assert not expired.ok and "expired" in expired.detail and "QBWC1048" in (expired.fix or "")
    wrong = _certificate_check(QbwcConfig(certfile=str(cert), keyfile=str(key),
                                          public_url="https://other.example.lan/qbwc"), NOW)
    assert not wrong.ok and "not other.example.lan" in wrong.detail
    _, other_key = _pair(tmp_path, "other")
    mismatch = _certificate_check(QbwcConfig(certfile=str(cert), keyfile=str(other_key)), NOW)
    assert not mismatch.ok and "does not match" in mismatch.detail
    soon = _certificate_check(QbwcConfig(certfile=str(cert), keyfile=str(key)), NOW + dt.timedelta(days=350))
    assert soon.ok and "renew it" in soon.detail
