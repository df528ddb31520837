"""The one error tree of ml-connector, grouped by what the caller should do.

```
MlConnectorError                  root; only cli.py renders it (one line, no traceback)
├── UserError                     the person must change something (exit 1)
│   ├── ConfigError               config.toml problems, each with its key path and the fix
│   ├── NotFoundError             an unknown report, posting or mapping
│   └── RefusedError              a safe refusal: overwrite without --force, replay of a posted report
├── StoreError                    the state file cannot be opened, migrated or written (exit 1)
│   └── LockedError               another run holds the lock (Task Scheduler overlap)
├── MappingError                  a report cannot be mapped; skippable: the report stays unposted
├── ExpensifyError                Expensify failed (exit 3)
│   ├── ExpensifyAuthError        bad credentials (401/403): fatal, never retried
│   ├── ExpensifyValidationError  410 and friends: the request is wrong, never retried
│   ├── ExpensifyEndpointError    expensify.url answers, but not as the Integration Server: never retried
│   └── ExpensifyRetriableError   429, 5xx, network, timeouts, a download not ready
│       └── ExpensifyConnectionError  no connection (refused, DNS, TLS, closed); some fail at once
├── QbxmlError                    qbXML could not be built or understood
│   ├── QbxmlParseError           a malformed qbXML response (changes nothing)
│   └── QuickBooksStatusError     QuickBooks answered a request with an error status
└── QbwcSessionError              a Web Connector call cannot be honoured (bad ticket, wrong order)
```

Errors carry data (report IDs, key paths, status codes) so that callers can act on them. Their text
never contains a secret: callers pass values through ``mlconnector.redact`` before raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class MlConnectorError(Exception):
    """Root of every error ml-connector raises on purpose.

    ``hint`` is an optional second line telling the user what to do.
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UserError(MlConnectorError):
    """Something the user has to change: an argument, a file, a mapping."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in the configuration: where it is, what is wrong, and how to fix it."""

    path: str
    problem: str
    fix: str | None = None

    def __str__(self) -> str:
        text = f"{self.path}: {self.problem}"
        return f"{text} ({self.fix})" if self.fix else text


class ConfigError(UserError):
    """The configuration has one or more problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[ConfigProblem], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        first = str(self.problems[0]) if self.problems else "invalid configuration"
        more = len(self.problems) - 1
        message = first if more <= 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)


class NotFoundError(UserError):
    """An object the user named does not exist."""


class RefusedError(UserError):
    """A deliberate refusal that protects data (overwrite, double posting)."""


class StoreError(MlConnectorError):
    """The state file cannot be opened, migrated or written."""


class LockedError(StoreError):
    """Another ml-connector run holds the lock."""


class MappingError(MlConnectorError):
    """A report cannot be mapped to QuickBooks; the report stays unposted with this reason."""

    def __init__(self, message: str, *, report_id: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report_id = report_id


class ExpensifyError(MlConnectorError):
    """Expensify's Integration Server failed or refused a request.

    ``response_code`` is the code from the JSON envelope (or the HTTP status when there is none).
    """

    def __init__(
        self, message: str, *, response_code: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.response_code = response_code


class ExpensifyAuthError(ExpensifyError):
    """The partner credentials were refused. Never retried."""


class ExpensifyValidationError(ExpensifyError):
    """Expensify rejected the request as malformed (410). Never retried."""


class ExpensifyRetriableError(ExpensifyError):
    """A failure that may pass: rate limit, server error, network, a download not ready yet."""


class ExpensifyEndpointError(ExpensifyError):
    """``expensify.url`` leads to a server that is not the Integration Server. Never retried.

    It answered with a web page, or with HTTP 400/404/405 and no JSON envelope: the URL is wrong
    (another web server, a wrong path) rather than the request.
    """


class ExpensifyConnectionError(ExpensifyRetriableError):
    """No conversation with the server: refused, unknown name, TLS failure, no connection in time, cut.

    ``host`` is the host of ``expensify.url`` (never the request), ``reason`` a few plain words
    (``"connection refused"``). ``retry_soon`` is False when trying again within seconds cannot help
    (a name that does not exist, a refused loopback or IP address, a certificate that cannot be
    verified): the client then gives up at once. The error stays retriable in the sense that a later
    run may pass, once the network or the configuration is fixed.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        reason: str = "",
        retry_soon: bool = True,
        response_code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, response_code=response_code, hint=hint)
        self.host = host
        self.reason = reason
        self.retry_soon = retry_soon


class QbxmlError(MlConnectorError):
    """qbXML could not be built or understood."""


class QbxmlParseError(QbxmlError):
    """A qbXML document is not well-formed or not shaped as expected.

    ``content`` keeps the start of the offending text for the log (never shown whole to users).
    """

    def __init__(self, message: str, *, content: bytes | str | None = None) -> None:
        super().__init__(message)
        self.content = content


class QuickBooksStatusError(QbxmlError):
    """QuickBooks answered a request with an error status code."""

    def __init__(self, status_code: int, message: str, *, request_id: str | None = None) -> None:
        super().__init__(f"QuickBooks error {status_code}: {message}")
        self.status_code = status_code
        self.status_message = message
        self.request_id = request_id


class QbwcSessionError(MlConnectorError):
    """A Web Connector call cannot be honoured (unknown or expired ticket, call out of order)."""
