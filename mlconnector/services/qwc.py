"""The ``.qwc`` file that registers ml-connector with the QuickBooks Web Connector (QBWC.md §4, §6).

OwnerID and FileID are generated once and kept in the state file: the Web Connector stamps FileID on
the company file under OwnerID, so a new pair would make it ask to replace or add the application
(and newer versions refuse a reused pair with QBWC1039).
"""

from __future__ import annotations

import ipaddress
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mlconnector.errors import UserError
from mlconnector.qbxml.qwc import QwcUrls, build_qwc
from mlconnector.store import Store

OWNER_ID_KEY = "qwc.owner_id"
FILE_ID_KEY = "qwc.file_id"
SOAP_PATH = "/qbwc"
SUPPORT_PATH = "/support"


class QwcUrlError(UserError):
    """The Web Connector would refuse this AppURL; the message names the QBWC code and the fix."""


def check_app_url(url: str) -> QwcUrls:
    """Validate an AppURL the way the Web Connector will, and derive AppSupport from it.

    Raises:
        QwcUrlError: not http(s), an IP address as host (QBWC1001), or plain HTTP for a host other
            than localhost (QBWC1010).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QwcUrlError(f"{url!r} is not a web address",
                          hint="pass --url https://your-host/qbwc")
    host = parts.hostname
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        better = "localhost" if ipaddress.ip_address(host).is_loopback else "the computer's host name"
        raise QwcUrlError(
            f"{url} uses an IP address; the Web Connector refuses that (QBWC1001)",
            hint=f"use a host name instead, e.g. {better}",
        )
    if parts.scheme == "http" and host.lower() != "localhost":
        raise QwcUrlError(
            f"{url} is not HTTPS; the Web Connector accepts plain HTTP only for localhost (QBWC1010)",
            hint="serve over HTTPS (mlconnector serve --certfile F --keyfile F, or a TLS proxy) and pass an https:// URL",
        )
    path = parts.path if parts.path not in ("", "/") else SOAP_PATH
    app_url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    support_url = urlunsplit((parts.scheme, parts.netloc, SUPPORT_PATH, "", ""))
    return QwcUrls(app_url, support_url)


def _guid() -> str:
    return "{" + str(uuid.uuid4()).upper() + "}"


def qwc_ids(store: Store) -> tuple[str, str]:
    """The installation's OwnerID and FileID, generated on first use and kept in the state file."""
    with store.atomic():
        owner = store.get_setting(OWNER_ID_KEY)
        file_id = store.get_setting(FILE_ID_KEY)
        if owner is None:
            owner = _guid()
            store.set_setting(OWNER_ID_KEY, owner)
        if file_id is None:
            file_id = _guid()
            store.set_setting(FILE_ID_KEY, file_id)
    return owner, file_id


def write_qwc(store: Store, output: Path, url: str, *, username: str, run_every_minutes: int) -> QwcUrls:
    """Check ``url``, then write the ``.qwc`` to ``output``; returns the URLs written.

    Raises:
        QwcUrlError: the Web Connector would refuse the URL.
        UserError: the file cannot be written.
    """
    urls = check_app_url(url)
    owner_id, file_id = qwc_ids(store)
    document = build_qwc(urls, username=username, owner_id=owner_id, file_id=file_id,
                         run_every_minutes=run_every_minutes)
    if not output.parent.is_dir():  # a typo in the path should not quietly create folders
        raise UserError(f"the folder {output.parent} does not exist", hint="create it, or choose another --output")
    try:
        output.write_bytes(document)
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}", hint="choose another --output") from exc
    return urls
