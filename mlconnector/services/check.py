"""What ``mlconnector check`` verifies, as plain data; and the diagnoses ``serve`` shares with it.

Each check answers one question a bookkeeper has on day one (and on a bad day): is the configuration
valid, does Expensify accept the credentials, can the state file be written, can ``serve`` listen, is
the certificate usable, has the Web Connector called, is anything blocked. A failing check carries the
fix. Checks never create the state file, never change the configuration, and never show a secret.

``serve`` uses :func:`address_problem` (and ``services.certificate``) for its own error messages, so the
two commands explain a busy port or a bad certificate in the same words.
"""

from __future__ import annotations

import datetime as dt
import errno
import http.client
import os
import socket
import ssl
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mlconnector.config import Config, QbwcConfig, load_config
from mlconnector.errors import ConfigError, ExpensifyError, StoreError
from mlconnector.expensify.jobs import policy_list_job
from mlconnector.models import PostingState
from mlconnector.paths import Paths
from mlconnector.redact import redact_text, register_secret
from mlconnector.services.certificate import (
    CERT_FIX,
    certificate_details,
    host_matches,
    tls_pair_problem,
)
from mlconnector.store import Store
from mlconnector.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    from mlconnector.expensify.client import ExpensifyClient

# How the QuickBooks Web Connector is set up, named in every fix that sends the user there.
WEB_CONNECTOR_STEPS = (
    "with mlconnector serve running, write the file with mlconnector qwc, open it in the QuickBooks Web Connector "
    "(Add an application), enter the password, tick Auto-Run and click Update Selected"
)
SERVER_PREFIX = "ml-connector/"  # the Server header of `mlconnector serve` (soap/server.py server_name)


@dataclass(frozen=True)
class Check:
    """One check: passed (``ok``), or failed with a ``fix``; ``skipped`` when it could not be run."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    skipped: bool = False


@dataclass(frozen=True)
class CheckReport:
    """Every check in order; ``ok`` when none failed (a skipped check is not a failure)."""

    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no check that ran failed."""
        return all(c.ok or c.skipped for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ``{"ok": bool, "checks": [{"name", "ok", "detail", "fix", "skipped"}]}``."""
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def run_checks(
    paths: Paths,
    expensify_client: Callable[[Config], ExpensifyClient],
    *,
    now: Callable[[], dt.datetime] = _utcnow,
    probe_timeout: float = 2.0,
) -> CheckReport:
    """Run every check in order (see the module docstring); nothing is created or changed.

    ``expensify_client`` builds the client for the credentials check (tests pass one on a simulator).
    """
    checks: list[Check] = []
    config, check = _config_check(paths)
    checks.append(check)
    checks.append(_credentials_check(config, expensify_client))
    store, check = _state_check(paths.state_file)
    checks.append(check)
    try:
        qbwc = config.qbwc if config else QbwcConfig()
        checks.append(_address_check(config, probe_timeout))
        checks.append(_certificate_check(qbwc, now()))
        checks.append(_web_connector_check(store, qbwc, now()))
        checks.append(_blocked_check(store))
    finally:
        if store is not None:
            store.close()
    return CheckReport(tuple(checks))


# ------------------------------------------------------------------------------------------ configuration


def _config_check(paths: Paths) -> tuple[Config | None, Check]:
    path = paths.config_file
    if not path.exists():
        return None, Check("configuration", False, f"no config.toml at {path}",
                           "run mlconnector init (or point --home/--config at the folder that has it)")
    try:
        config = load_config(path)
    except ConfigError as exc:
        problems = "; ".join(str(p) for p in exc.problems) or str(exc)
        return None, Check("configuration", False, f"{path}: {problems}",
                           f"edit {path}: each problem names its key and what to put there")
    secret = config.expensify.partner_user_secret
    register_secret(secret.reveal() if secret else None)
    return config, Check("configuration", True, f"{path} is valid (mode {config.quickbooks.mode.value})")


def _credentials_check(config: Config | None, client_for: Callable[[Config], ExpensifyClient]) -> Check:
    name = "Expensify credentials"
    if config is None:
        return Check(name, False, "skipped: the configuration is not valid", skipped=True)
    user = config.expensify.partner_user_id
    if not (user and config.expensify.partner_user_secret):
        return Check(name, False, "skipped: no Expensify credentials are configured",
                     "set expensify.partner_user_id in config.toml and the secret in MLCONNECTOR_EXPENSIFY_SECRET "
                     "(or expensify.partner_user_secret)", skipped=True)
    try:
        client = client_for(config)
        try:
            answer = client.get(policy_list_job())
        finally:
            client.close()
    except ExpensifyError as exc:
        return Check(name, False, f"partner user {user}: {redact_text(str(exc))}",
                     redact_text(exc.hint) if exc.hint else
                     "check expensify.partner_user_id and the secret (MLCONNECTOR_EXPENSIFY_SECRET)")
    policies = answer.get("policyList") or []
    count = len(policies) if isinstance(policies, list) else 0
    return Check(name, True, f"Expensify accepts partner user {user} ({count} polic{'y' if count == 1 else 'ies'} "
                             "visible)")


# ------------------------------------------------------------------------------------------ state file


def newest_schema() -> str:
    """The name of the newest migration this ml-connector knows."""
    return max(m.name for m in MIGRATIONS)


def _state_check(path: Path) -> tuple[Store | None, Check]:
    """Open the state file (never creating it); the open store is kept for the later checks."""
    name = "state file"
    if not path.exists():
        return None, Check(name, False, f"no state file at {path}", "run mlconnector init")
    if not path.is_file():
        return None, Check(name, False, f"{path} is not a file", "point --home at the folder mlconnector init made")
    mode = path.stat().st_mode
    read_only = not (mode & stat.S_IWUSR) or not os.access(path, os.W_OK)
    try:
        store = Store.open(path)
    except StoreError as exc:
        return None, Check(name, False, f"cannot open {path}: {exc}", exc.hint or "run mlconnector init")
    if read_only:
        return store, Check(name, False, f"{path} is read-only: serve and pull cannot record what they post",
                            "clear its read-only attribute (file Properties on Windows, chmod u+w elsewhere) and "
                            "give your user write permission on it and its folder")
    try:
        with store.atomic():  # takes the write lock and lets it go: nothing is written
            pass
    except StoreError as exc:
        return store, Check(name, False, f"{path} cannot be written: {exc}",
                            "give your user write permission on the file and its folder")
    version, newest = store.schema_version(), newest_schema()
    if version != newest:
        return store, Check(name, False, f"{path} has schema {version}, this ml-connector expects {newest}",
                            "upgrade ml-connector (pip install --upgrade mlconnector), then run any command")
    return store, Check(name, True, f"{path} is readable and writable, schema {version}")


# ------------------------------------------------------------------------------------------ serve address


def _is(exc: OSError, name: str) -> bool:
    """True when ``exc`` carries errno ``name`` (POSIX) or its Windows Sockets twin (``WSA`` + name)."""
    codes = {getattr(errno, name, None), getattr(errno, "WSA" + name, None)}
    return exc.errno is not None and exc.errno in codes - {None}


def address_problem(exc: OSError, host: str, port: int) -> tuple[str, str]:
    """What a failed bind of ``host:port`` means and what to do, told apart by errno: (problem, fix)."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return (f"cannot listen on {where}: {host} is not a name or address this machine knows",
                "use --host 127.0.0.1 (or [qbwc] host), or this machine's own address")
    if _is(exc, "EADDRINUSE"):
        return (f"cannot listen on {where}: the address is already in use",
                "choose another --port (or [qbwc] port), or stop the program using it")
    if _is(exc, "EADDRNOTAVAIL"):
        return (f"cannot listen on {where}: {host} is not an address of this machine",
                "use --host 127.0.0.1 (or [qbwc] host), or this machine's own address (0.0.0.0 listens on all)")
    if _is(exc, "EACCES"):
        return (f"cannot listen on {where}: not allowed to use this port (ports below 1024 need administrator "
                "rights; Windows also reserves some ports)", "choose another --port above 1024 (or [qbwc] port)")
    return (f"cannot listen on {where}: {exc.strerror or exc}",
            "check --host and --port (or [qbwc] host and port)")


def try_bind(host: str, port: int) -> OSError | None:
    """Bind ``host:port`` as ``serve`` would and let it go at once; the error, or None when it is free."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return exc
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            if os.name != "nt":  # as cheroot: a port in TIME_WAIT is free (on Windows this would share it)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
                return None
            except OSError as exc:
                error = error or exc
    return error


def serves_ml_connector(host: str, port: int, timeout: float) -> bool:
    """True when ``http(s)://host:port/support`` answers with ml-connector's Server header."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    for secure in (False, True):
        conn: http.client.HTTPConnection
        if secure:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # only asking who answers
            conn = http.client.HTTPSConnection(target, port, timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection(target, port, timeout=timeout)
        try:
            conn.request("GET", "/support")
            server = conn.getresponse().getheader("Server") or ""
            return server.startswith(SERVER_PREFIX)
        except TimeoutError:  # a TLS server answers plain HTTP at once; silence is something else
            return False
        except (OSError, http.client.HTTPException):
            continue
        finally:
            conn.close()
    return False


def _address_check(config: Config | None, timeout: float) -> Check:
    name = "serve address"
    if config is None:
        return Check(name, False, "skipped: the configuration is not valid", skipped=True)
    host, port = config.qbwc.host, config.qbwc.port
    error = try_bind(host, port)
    if error is None:
        return Check(name, True, f"{host}:{port} is free for mlconnector serve")
    if _is(error, "EADDRINUSE") and serves_ml_connector(host, port, timeout):
        return Check(name, True, f"{host}:{port} is already served by ml-connector (mlconnector serve is running)")
    if _is(error, "EADDRINUSE"):
        return Check(name, False, f"{host}:{port} is in use by another program, not ml-connector",
                     "choose another [qbwc] port in config.toml (then write the .qwc file again with "
                     "mlconnector qwc), or stop the program using it")
    problem, fix = address_problem(error, host, port)
    return Check(name, False, problem, fix.replace("--host 127.0.0.1 (or [qbwc] host)", "[qbwc] host = 127.0.0.1"))


# ------------------------------------------------------------------------------------------ certificate


def _certificate_check(qbwc: QbwcConfig, now: dt.datetime) -> Check:
    """[qbwc] certfile/keyfile: a pair serve can use, not expired (warned within 30 days), and covering the
    host name of public_url (the Web Connector checks both)."""
    if not (qbwc.certfile or qbwc.keyfile):
        return Check("certificate", False, "skipped: no certificate is configured ([qbwc] certfile and keyfile, "
                                           "or mlconnector serve --certfile/--keyfile)", skipped=True)
    if not (qbwc.certfile and qbwc.keyfile):
        return Check("certificate", False, "only one of [qbwc] certfile and keyfile is set",
                     fix="set both: the PEM certificate and its PEM private key")
    certfile, keyfile = Path(qbwc.certfile), Path(qbwc.keyfile)
    problem = tls_pair_problem(certfile, keyfile)
    if problem:
        return Check("certificate", False, problem, fix=CERT_FIX)
    details = certificate_details(certfile)
    if details is None:
        return Check("certificate", True, f"{certfile} and its key are a usable pair (expiry not readable here)")
    expires, names = details
    if expires <= now:
        return Check("certificate", False, f"{certfile} expired on {expires:%Y-%m-%d}",
                     fix="renew the certificate; the Web Connector refuses an expired one (QBWC1048)")
    host = urlsplit(qbwc.public_url).hostname if qbwc.public_url else None
    if host and names and not any(host_matches(host, name) for name in names):
        return Check("certificate", False, f"{certfile} is for {', '.join(names)}, not {host} (qbwc.public_url)",
                     fix="use a certificate issued for that host name, or set public_url to a name it covers")
    left = (expires - now).days
    detail = f"{certfile} and its key are a usable pair, valid until {expires:%Y-%m-%d}"
    if left < 30:
        detail += f" (renew it: {left} day(s) left)"
    return Check("certificate", True, detail)


# ------------------------------------------------------------------------------------------ Web Connector


def age_text(delta: dt.timedelta) -> str:
    """``42 s``, ``3 min 2 s``, ``2 h 5 min``, ``3 days 4 h``: how long, for people."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {secs} s" if secs else "")
    return f"{secs} s"


def _web_connector_check(store: Store | None, qbwc: QbwcConfig, now: dt.datetime) -> Check:
    name = "Web Connector"
    if store is None:
        return Check(name, False, "skipped: the state file cannot be opened", skipped=True)
    last = store.get_setting("qbwc.last_contact")
    if not last:
        return Check(name, False, "it has never called ml-connector", WEB_CONNECTOR_STEPS)
    age = now - dt.datetime.fromisoformat(last)
    waiting = store.posting_counts()[PostingState.QUEUED]
    if age > dt.timedelta(minutes=2 * qbwc.run_every_minutes) and waiting:
        return Check(name, False, f"last called {age_text(age)} ago, and {waiting} posting(s) wait for it "
                                  f"(it should call every {qbwc.run_every_minutes} min)",
                     "check that mlconnector serve is running, QuickBooks can open the company file, and the "
                     f"Web Connector is open with Auto-Run ticked for ml-connector; if it is not listed: "
                     f"{WEB_CONNECTOR_STEPS}")
    return Check(name, True, f"last called {age_text(age)} ago")


def _blocked_check(store: Store | None) -> Check:
    name = "blocked work"
    if store is None:
        return Check(name, False, "skipped: the state file cannot be opened", skipped=True)
    from mlconnector.services.status import attention

    found = attention(store, limit=0)
    blocked, failed = found["blocked"]["count"], found["failed"]["count"]
    if blocked or failed:
        return Check(name, False, f"{blocked} posting(s) blocked, {failed} failed",
                     "run mlconnector status: it lists each one with its reason and fix")
    return Check(name, True, "nothing is blocked or failed")


__all__ = [
    "Check", "CheckReport", "address_problem", "age_text", "newest_schema", "run_checks",
    "serves_ml_connector", "try_bind",
]
