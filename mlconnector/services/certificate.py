"""A certificate and key for HTTPS, as ``serve`` uses them and ``check`` tests them: a usable pair, when it
expires, which host names it covers. Only the standard library (ssl): no extra dependency."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

CERT_FIX = "check --certfile/--keyfile: a PEM certificate and its own unencrypted PEM private key"


def certificate_details(certfile: Path) -> tuple[dt.datetime, list[str]] | None:
    """When the certificate expires and the DNS names it covers; None when this Python cannot read them."""
    decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)  # the stdlib's own PEM reader
    if decode is None:
        return None
    try:
        info = decode(str(certfile))
        expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notAfter"]), dt.timezone.utc)
    except (ssl.SSLError, OSError, KeyError, ValueError):
        return None
    names = [value for kind, value in info.get("subjectAltName", ()) if kind == "DNS"]
    if not names:
        names = [value for rdn in info.get("subject", ()) for key, value in rdn if key == "commonName"]
    return expires, names


def host_matches(host: str, name: str) -> bool:
    host, name = host.lower(), name.lower()
    if name.startswith("*."):
        return host.count(".") == name.count(".") and host.endswith(name[1:])
    return host == name


def tls_pair_problem(certfile: Path, keyfile: Path) -> str | None:
    """Why ``serve`` could not use this certificate and key (unreadable, not PEM, not a pair), or None."""
    texts = {}
    for option, file in (("--certfile", certfile), ("--keyfile", keyfile)):
        try:
            texts[option] = file.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            return f"cannot read {option} {file}: {exc.strerror or exc}"
    if "-----BEGIN CERTIFICATE-----" not in texts["--certfile"]:
        return f"{certfile} is not a PEM certificate (no BEGIN CERTIFICATE line)"
    key = texts["--keyfile"]
    if "PRIVATE KEY-----" not in key:
        return f"{keyfile} is not a PEM private key (no BEGIN PRIVATE KEY line)"
    if "ENCRYPTED" in key:
        return f"{keyfile} is protected by a passphrase; serve needs the key without one"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(certfile), str(keyfile), password=lambda: b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            return f"the key in {keyfile} does not match the certificate"
        return f"OpenSSL could not load the pair: {exc.reason or exc}"
    except OSError as exc:
        return f"cannot read the pair: {exc.strerror or exc}"
    return None
