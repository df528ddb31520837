"""The Integration Server client: one endpoint, one answer classifier, one retry policy, one limiter.

Every job is a form POST of ``requestJobDescription`` (strict JSON) plus, for exports, a sibling
``template`` field (EXPENSIFY.md §1). Expensify reports most failures in a JSON envelope at HTTP 200,
answers an export with a bare file name and a download with raw bytes, so the HTTP status alone says
little: :func:`classify` looks at status, body and what the job should return, and is the only
place that decides between success, retriable and fatal. ``requests`` exceptions are translated
here (:func:`map_requests_error`) into one plain sentence naming the host and what happened, and
never leave the package. The secret is registered with ``mlconnector.redact`` and never logged.

Where retrying cannot help (a name that does not resolve, a refused loopback port, a certificate
that cannot be verified, a URL that leads to some other web server) the client fails at once; other
connection failures get a few quick tries (``RetryPolicy.connect_budget``), and every wait before a
new try is announced through ``on_retry`` (or a WARNING log line).
"""

from __future__ import annotations

import html
import ipaddress
import json
import logging
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from mlconnector.config import DEFAULT_EXPENSIFY_URL
from mlconnector.errors import (
    ExpensifyAuthError,
    ExpensifyConnectionError,
    ExpensifyEndpointError,
    ExpensifyError,
    ExpensifyRetriableError,
    ExpensifyValidationError,
)
from mlconnector.expensify.pacing import RateLimiter, RetryPolicy
from mlconnector.redact import Secret, redact_text, register_secret

log = logging.getLogger("mlconnector.expensify")

Expect = Literal["filename", "json", "file"]
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\.[A-Za-z0-9]+(,[A-Za-z0-9][A-Za-z0-9_.\-]*\.[A-Za-z0-9]+)*")
_HTML_TITLE = re.compile(rb"<(title|h1)[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
# Tomcat's page titles for a request Expensify could not read (EXPENSIFY.md §7.2).
_UNREADABLE_REQUEST = re.compile(r"HTTP Status 500\s*[-\u2013]\s*(JSONObject|requestJobDescription)\b", re.IGNORECASE)
_HEAD_LIMIT = 64 * 1024
CHUNK = 256 * 1024
AUTH_HINT = "check expensify.partner_user_id and the secret (MLCONNECTOR_EXPENSIFY_SECRET)"
_CONFIG = "config.toml (MLCONNECTOR_HOME/config.toml)"
NETWORK_HINT = f"check your internet connection and expensify.url in {_CONFIG}"
DNS_HINT = f"check the spelling of expensify.url in {_CONFIG}, and your internet connection"
TLS_HINT = (f"check expensify.url in {_CONFIG}; a proxy or antivirus that inspects HTTPS, or a wrong date and"
            " time on this computer, also causes this")
PROXY_HINT = f"check the proxy settings of this computer (or HTTPS_PROXY) and expensify.url in {_CONFIG}"
URL_HINT = f"check expensify.url in config.toml; it should be {DEFAULT_EXPENSIFY_URL}"
SLOW_HINT = "Expensify may be busy; run mlconnector pull again later"


class DownloadNotReady(ExpensifyRetriableError):
    """The export file is not written yet (an empty body, or "File not found" for a fresh name)."""


def host_of(url: str | None) -> str:
    """The host (and an explicit port) of ``url`` for messages: never its path, query or user info."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the server at expensify.url"
    if not host:
        return "the server at expensify.url"
    shown = f"[{host}]" if ":" in host and port else host
    return redact_text(f"{shown}:{port}" if port else shown)


def _hostname(url: str | None) -> str:
    try:
        return redact_text(urlsplit(url or "").hostname or "")
    except ValueError:
        return ""


def _fixed_host(url: str | None) -> bool:
    """True for a loopback name or an IP address: a refused connection there will not heal in seconds."""
    host = _hostname(url)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_official(url: str | None) -> bool:
    """True when ``url`` is Expensify's one endpoint (or unknown): its odd answers are Expensify's own."""
    if url is None:
        return True
    return url.strip().rstrip("/").lower() == DEFAULT_EXPENSIFY_URL.lower()


def _wrapped(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps (causes, contexts, urllib3's ``reason`` and exception arguments)."""
    found: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo.extend(item for item in linked if isinstance(item, BaseException))
    return found


def _seconds(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _clip(text: str, limit: int) -> str:
    """``text`` on one line, at most about ``limit`` characters, cut between words."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(") + " …"


def _os_reason(chain: list[BaseException]) -> str | None:
    """The operating system's own words for the deepest socket error (``network is unreachable``)."""
    for item in reversed(chain):
        if isinstance(item, OSError) and not isinstance(item, socket.gaierror) and item.strerror:
            words = str(item.strerror).strip().rstrip(".")
            return words[:1].lower() + words[1:]
    return None


def map_requests_error(exc: requests.RequestException, url: str | None = None,
                       timeout: tuple[float, float] | None = None) -> ExpensifyError:
    """The ml-connector error for a ``requests`` failure: one plain sentence that names the host.

    Python's and urllib3's texts (``HTTPSConnectionPool(...)``, ``[Errno 111]``) stay in the log;
    the message says what happened in words. Network trouble is retriable (an
    :class:`ExpensifyConnectionError`), but ``retry_soon`` is False where seconds cannot help: an
    unknown name, a refused loopback or IP address, a certificate that cannot be verified.
    """
    log.debug("request to Expensify failed: %s: %s", type(exc).__name__, redact_text(str(exc)))
    host = host_of(url) if url else "Expensify"
    chain = _wrapped(exc)
    connect_s, read_s = timeout if timeout else (None, None)

    def connection(reason: str, message: str, hint: str, *, retry_soon: bool = True) -> ExpensifyConnectionError:
        return ExpensifyConnectionError(message, host=host, reason=reason, retry_soon=retry_soon, hint=hint)

    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.URLRequired)):
        return ExpensifyError(f"the Expensify URL is not usable ({_clip(redact_text(str(exc)), 200)})", hint=URL_HINT)
    names = [item for item in chain if isinstance(item, (socket.gaierror, urllib3.exceptions.NameResolutionError))]
    if names:
        temporary = any(isinstance(item, socket.gaierror) and item.errno == socket.EAI_AGAIN for item in chain)
        name = _hostname(url) or host
        return connection("the name could not be resolved", f"the name {name} could not be resolved (DNS)",
                          DNS_HINT, retry_soon=temporary)
    if isinstance(exc, requests.exceptions.SSLError) or any(isinstance(item, ssl.SSLError) for item in chain):
        if any(isinstance(item, ssl.SSLCertVerificationError) for item in chain):
            return connection("TLS certificate not verified", f"the TLS certificate of {host} could not be verified",
                              TLS_HINT, retry_soon=False)
        return connection("TLS failure", f"the secure (TLS) connection to {host} failed", TLS_HINT)
    if isinstance(exc, requests.exceptions.ProxyError):
        return connection("proxy failure", f"could not connect to {host} through the proxy", PROXY_HINT)
    if any(isinstance(item, ConnectionRefusedError) for item in chain):
        return connection("connection refused", f"could not connect to {host}: connection refused", NETWORK_HINT,
                          retry_soon=not _fixed_host(url))
    within = f" within {_seconds(connect_s)} s" if connect_s else " in time"
    if isinstance(exc, requests.ConnectTimeout) or any(
            isinstance(item, urllib3.exceptions.ConnectTimeoutError)
            and not isinstance(item, urllib3.exceptions.NewConnectionError) for item in chain):
        return connection(f"no connection{within}", f"could not connect to {host}: no answer{within}", NETWORK_HINT)
    if isinstance(exc, requests.Timeout) or any(
            isinstance(item, (urllib3.exceptions.ReadTimeoutError, TimeoutError)) for item in chain):
        within = f" within {_seconds(read_s)} s" if read_s else " in time"
        return ExpensifyRetriableError(f"{host} did not answer{within}", hint=SLOW_HINT)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return ExpensifyRetriableError(f"the answer from {host} was cut off", hint=SLOW_HINT)
    if isinstance(exc, requests.ConnectionError):
        closed = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, urllib3.exceptions.ProtocolError)
        if any(isinstance(item, closed) for item in chain):
            return connection("connection closed", f"the connection to {host} closed before it answered",
                              NETWORK_HINT)
        reason = _os_reason(chain) or "network error"
        return connection(reason, f"could not connect to {host}: {reason}", NETWORK_HINT)
    detail = _clip(redact_text(str(exc)), 200)
    return ExpensifyError(f"the request to {host} failed ({type(exc).__name__}: {detail})")


def _envelope(body: bytes) -> dict[str, Any] | None:
    """The JSON envelope in ``body``, if that is what it is (pretty-printed or on the first line)."""
    if not body.lstrip().startswith(b"{"):
        return None
    for text in (body, body.split(b"\n", 1)[0]):
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict) and ("responseCode" in data or "responseMessage" in data):
            return data
        return None
    return None


def _is_html(content_type: str, body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _html_error(status: int, body: bytes) -> ExpensifyError:
    """The error for an HTML page (Tomcat's, or a proxy's) where Expensify's API answers JSON or text.

    A 5xx page is a server error at Expensify or at a proxy in front of it: retriable, like any 5xx.
    Tomcat's "HTTP Status 500 - JSONObject" / "- requestJobDescription" pages are the one exception:
    EXPENSIFY.md (§7.2, from a 2013 script, unverified today) reads them as "the request could not be
    read", which retrying cannot fix; as that is not certain, the message names both possibilities.
    """
    match = _HTML_TITLE.search(body[:_HEAD_LIMIT])
    text = html.unescape(re.sub(r"<[^>]*>", "", match.group(2).decode("utf-8", "replace"))) if match else ""
    title = redact_text(" ".join(text.split()) or "no title")[:160]
    log.debug("HTML page from Expensify (HTTP %d): %s", status,
              redact_text(" ".join(body[:500].decode("utf-8", "replace").split())))
    if status >= 500 and _UNREADABLE_REQUEST.search(title):
        return ExpensifyError(
            f"Expensify failed with an HTML error page (HTTP {status}: {title}): it could not read the request",
            response_code=status,
            hint="a fault at Expensify or a bug in ml-connector; run mlconnector pull again later, and if it"
                 " repeats, report it with the log file",
        )
    if status >= 500:
        return ExpensifyRetriableError(
            f"Expensify failed with an HTML error page (HTTP {status}: {title})", response_code=status,
            hint="a server error at Expensify or at a proxy in front of it; run mlconnector pull again later",
        )
    return ExpensifyError(
        f"Expensify answered with an HTML error page (HTTP {status}: {title})", response_code=status,
        hint="check expensify.url; if it is right, see the log file",
    )


def _from_envelope(data: dict[str, Any], status: int) -> ExpensifyError:
    message = redact_text(str(data.get("responseMessage") or "no message"))[:300]
    code = data.get("responseCode")
    code = code if isinstance(code, int) else status
    lowered = message.lower()
    if code in (401, 403) or "authenticat" in lowered or "not authorized" in lowered:
        return ExpensifyAuthError(f"Expensify refused the credentials ({code}): {message}", response_code=code,
                                  hint=AUTH_HINT)
    if code == 429 or "rate-limited" in lowered or "rate limited" in lowered:
        return ExpensifyRetriableError(f"Expensify rate-limited the request ({code}): {message}", response_code=429)
    if 500 <= code < 600:
        return ExpensifyRetriableError(f"Expensify failed ({code}): {message}", response_code=code)
    if code in (400, 404, 410):
        return ExpensifyValidationError(f"Expensify rejected the request ({code}): {message}", response_code=code)
    return ExpensifyError(f"Expensify answered {code}: {message}", response_code=code)


def _endpoint_error(status: int, body: bytes, *, page: bool, url: str | None) -> ExpensifyEndpointError:
    """The error for an answer no Integration Server gives: ``expensify.url`` leads somewhere else."""
    text = body[:_HEAD_LIMIT].strip()
    if page:
        kind = "a web page"
    elif not text:
        kind = "an empty answer"
    elif text.startswith((b"{", b"[")):
        kind = "JSON that is not Expensify's"
    else:
        kind = "plain text"
    log.info("expensify.url answered HTTP %d with %s: %s", status, kind,
             redact_text(" ".join(text[:300].decode("utf-8", "replace").split())))
    return ExpensifyEndpointError(f"{host_of(url)} answered HTTP {status} with {kind}, not the Expensify"
                                  " Integration Server", response_code=status, hint=URL_HINT)


def classify(status: int, content_type: str, body: bytes, *, expect: Expect, url: str | None = None) -> Any:
    """Decide what one answer means; the only place that does.

    ``body`` is the whole body, or for ``expect="file"`` the start of it. Returns the file name
    (``"filename"``), the decoded object (``"json"``) or None (``"file"``: the body is the file).
    ``url`` is where the request went: when it is not Expensify's endpoint, a web page below 500 or
    an HTTP 400/404/405 without an envelope means the URL leads to some other server.

    Raises:
        ExpensifyAuthError: 401/403 or an authentication envelope.
        ExpensifyValidationError: 400/404/410 (status or envelope), with Expensify's message.
        ExpensifyEndpointError: a web page (below 500), or 400/404/405 without an envelope, from a URL
            that is not Expensify's endpoint.
        ExpensifyRetriableError: 429, 5xx (an HTML error page too); DownloadNotReady for a file not ready.
        ExpensifyError: Tomcat's page for a request it could not read, another HTML page, or an answer
            of the wrong shape.
    """
    if status in (401, 403):
        return _raise(ExpensifyAuthError(f"Expensify refused the credentials (HTTP {status})",
                                         response_code=status, hint=AUTH_HINT))
    if status == 429:
        return _raise(ExpensifyRetriableError("Expensify rate-limited the request (HTTP 429)", response_code=429))
    elsewhere = not _is_official(url)
    if _is_html(content_type, body):
        if status < 500 and elsewhere:
            return _raise(_endpoint_error(status, body, page=True, url=url))
        return _raise(_html_error(status, body))
    envelope = _envelope(body)
    if envelope is not None:
        code = envelope.get("responseCode")
        if expect == "json" and code in (200, 207) and status < 400:
            return envelope
        if expect == "file" and code is None and "not found" in str(envelope.get("responseMessage", "")).lower():
            return _raise(DownloadNotReady("the export file is not ready yet"))
        return _raise(_from_envelope(envelope, status))
    if status >= 500:
        return _raise(ExpensifyRetriableError(f"Expensify failed (HTTP {status})", response_code=status))
    if status in (400, 404, 405) and elsewhere:
        return _raise(_endpoint_error(status, body, page=False, url=url))
    if status >= 400:
        return _raise(ExpensifyValidationError(f"Expensify rejected the request (HTTP {status})", response_code=status))
    text = body.decode("utf-8", "replace").strip()
    if expect == "file":
        if not text:
            return _raise(DownloadNotReady("the export file is not ready yet"))
        return None
    if expect == "filename" and _FILE_NAME.fullmatch(text):
        return text
    what = "a file name" if expect == "filename" else "JSON"
    return _raise(ExpensifyError(f"Expensify answered with something other than {what}: {redact_text(text[:80])!r}",
                                 hint=URL_HINT if elsewhere else None))


def _raise(error: ExpensifyError) -> Any:
    raise error


class ExpensifyClient:
    """Talks to the Integration Server.

    Args:
        partner_user_id: the partnerUserID.
        secret: the partnerUserSecret (a ``config.Secret`` or text); registered for redaction.
        url: the one endpoint every job is posted to.
        session: the HTTP seam; tests pass their own, else a new ``requests.Session``.
        limiter, retry: pacing and retry policy (defaults: Expensify's documented limits, 5 tries).
        sleep, clock, rand: injected time and randomness (tests make time fast).
        max_polls, poll_delay, max_poll_delay: how long to wait for an export file to be ready.
        on_retry: called with one short sentence before each wait for a new try ("Expensify did not
            answer (connection refused); trying again in 2 s (2 of 4)"), so that a person sees why
            nothing happens; without it the sentence is logged at WARNING.
    """

    def __init__(
        self,
        partner_user_id: str,
        secret: Secret | str,
        url: str,
        session: requests.Session | None = None,
        *,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        timeout: tuple[float, float] = (15.0, 240.0),
        max_polls: int = 30,
        poll_delay: float = 2.0,
        max_poll_delay: float = 30.0,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._user = partner_user_id
        self._secret = Secret(secret) if isinstance(secret, str) else secret
        register_secret(self._secret.reveal())
        self.url = url
        self._own_session = session is None
        self._session = session or requests.Session()
        self._sleep = sleep
        self.limiter = limiter or RateLimiter(clock=clock, sleep=sleep)
        self.retry = retry or RetryPolicy()
        self._rand = rand
        self._timeout = timeout
        self.max_polls = max_polls
        self.poll_delay = poll_delay
        self.max_poll_delay = max_poll_delay
        self.on_retry = on_retry

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> ExpensifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- public jobs

    def export(self, job: dict[str, Any], template: str) -> str:
        """Submit an export job; returns the bare file name Expensify answers with."""
        return str(self._call(self._form(job, template), "filename"))

    def get(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run a getter job; returns the decoded answer (``responseCode`` 200)."""
        result: dict[str, Any] = self._call(self._form(job, None), "json")
        return result

    def download(self, file_name: str, dest: IO[bytes], *, on_bytes: Callable[[int], None] | None = None) -> int:
        """Poll the Downloader until the export file is ready and write it to ``dest``; returns its size.

        Raises:
            ExpensifyRetriableError: the file was still not ready after ``max_polls`` polls.
        """
        from mlconnector.expensify.jobs import download_job

        form = self._form(download_job(file_name), None)
        waited = 0.0
        for poll in range(1, self.max_polls + 1):
            try:
                size: int = self._call(form, "file", dest=dest, on_bytes=on_bytes)
                return size
            except DownloadNotReady:
                if poll == self.max_polls:
                    break
                delay = min(self.max_poll_delay, self.poll_delay * 1.5 ** (poll - 1))
                log.debug("export %s not ready (poll %d); waiting %.1f s", file_name, poll, delay)
                self._sleep(delay)
                waited += delay
        raise ExpensifyRetriableError(
            f"the export file {file_name} was not ready after {self.max_polls} polls ({waited:.0f} s)",
            hint="Expensify may be busy; run mlconnector pull again later",
        )

    # ------------------------------------------------------------------------------- plumbing

    def _form(self, job: dict[str, Any], template: str | None) -> dict[str, str]:
        credentials = {"partnerUserID": self._user, "partnerUserSecret": self._secret.reveal()}
        form = {"requestJobDescription": json.dumps({**job, "credentials": credentials}, separators=(",", ":"))}
        if template is not None:
            form["template"] = template  # its own field: nested in the JSON it is "No Template Submitted"
        return form

    def _call(self, form: dict[str, str], expect: Expect, *, dest: IO[bytes] | None = None,
              on_bytes: Callable[[int], None] | None = None) -> Any:
        """Send once per try under the limiter; retry retriable failures per the policy.

        A connection failure that seconds cannot heal is raised at once; other connection failures
        get the policy's short connection budget; each wait is announced before it starts.
        """
        for attempt in range(1, self.retry.max_tries + 1):
            self.limiter.acquire()
            try:
                return self._once(form, expect, dest, on_bytes)
            except DownloadNotReady:
                raise
            except ExpensifyRetriableError as exc:
                connection = isinstance(exc, ExpensifyConnectionError)
                if isinstance(exc, ExpensifyConnectionError) and not exc.retry_soon:
                    raise  # an unknown name, a refused local port, an untrusted certificate: seconds won't help
                tries = self.retry.tries(connection=connection)
                if attempt >= tries:
                    raise _after_tries(exc, attempt) from exc
                delay = self.retry.delay(attempt, self._rand, rate_limited=exc.response_code == 429,
                                         connection=connection)
                self._announce(f"{_why(exc)}; trying again in {_seconds(delay)} s ({attempt + 1} of {tries})")
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _announce(self, sentence: str) -> None:
        if self.on_retry is None:
            log.warning("%s", sentence)
            return
        log.info("%s", sentence)
        self.on_retry(sentence)

    def _once(self, form: dict[str, str], expect: Expect, dest: IO[bytes] | None,
              on_bytes: Callable[[int], None] | None) -> Any:
        try:
            with self._session.post(self.url, data=form, timeout=self._timeout, stream=expect == "file") as response:
                if expect != "file":
                    return classify(response.status_code, response.headers.get("Content-Type", ""),
                                    response.content, expect=expect, url=self.url)
                assert dest is not None
                return self._stream(response, dest, on_bytes)
        except requests.RequestException as exc:
            raise map_requests_error(exc, self.url, self._timeout) from exc

    def _stream(self, response: requests.Response, dest: IO[bytes],
                on_bytes: Callable[[int], None] | None) -> int:
        chunks = response.iter_content(CHUNK)
        head = _read_head(chunks)
        classify(response.status_code, response.headers.get("Content-Type", ""), head, expect="file", url=self.url)
        dest.seek(0)
        dest.truncate()
        size = 0
        for chunk in _chain(head, chunks):
            dest.write(chunk)
            size += len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        dest.flush()
        return size


def _why(exc: ExpensifyError) -> str:
    """The failure in a few words, for the sentence announcing a new try."""
    if isinstance(exc, ExpensifyConnectionError) and exc.reason:
        return f"Expensify did not answer ({exc.reason})"
    return exc.message


def _after_tries(exc: ExpensifyError, tries: int) -> ExpensifyError:
    """The same error, saying how many tries were made."""
    message = f"{exc.message} (after {tries} tries)"
    hint = exc.hint or "run mlconnector pull again later"
    if isinstance(exc, ExpensifyConnectionError):
        return ExpensifyConnectionError(message, host=exc.host, reason=exc.reason, retry_soon=exc.retry_soon,
                                        response_code=exc.response_code, hint=hint)
    return type(exc)(message, response_code=exc.response_code, hint=hint)


def _read_head(chunks: Iterator[bytes]) -> bytes:
    """The start of a body: up to the first newline or 64 KiB, enough to recognise an envelope."""
    head = b""
    for chunk in chunks:
        head += chunk
        if b"\n" in head or len(head) >= _HEAD_LIMIT:
            break
    return head


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


# RateLimiter and RetryPolicy live in pacing.py; they are part of the client's interface.
__all__ = ["AUTH_HINT", "CHUNK", "DNS_HINT", "NETWORK_HINT", "URL_HINT", "DownloadNotReady", "ExpensifyClient",
           "RateLimiter", "RetryPolicy", "classify", "host_of", "map_requests_error"]
