"""The one exception tree of pcsync.

It lives in the lowest layer (``reconciliation`` imports nothing from the other
packages) so that connectors, reconciliation and the application all raise the
same family, and the CLI turns any of them into one line and an exit code.

The tree is organised by what the caller should do::

    PcsyncError                      anything pcsync raises on purpose
    ├── ConfigError                  fix the configuration (exit 2)
    ├── InputError                   fix the input file or argument (exit 2)
    ├── DataError                    stored or received data breaks a rule
    │   ├── RecordError              one received record is unreadable: set it aside
    │   └── CurrencyMismatchError    money of two currencies combined
    ├── DatabaseError                the database is unreachable or out of date
    ├── LockedError                  another run holds the lock; retry later
    ├── SafetyLimitError             a destructive action was refused
    ├── ApplyError                   some changes failed; rerun to finish
    ├── NoticeError                  a notice could not be sent; retried next run
    ├── OutputError                  a file could not be written (disk full, no permission)
    └── ConnectorError               talking to Microsoft failed
        ├── AuthenticationError      credentials rejected (AADSTS…)
        ├── PermissionDeniedError    signed in, but refused the rights pcsync needs
        ├── ApiError                 Microsoft answered with an error
        │   ├── NotFoundError        404
        │   ├── ConflictError        etag mismatch, invalid state transition
        │   ├── ThrottledError  *    429 (carries retry_after)
        │   ├── ServerError     *    5xx
        │   └── BadResponseError *   200 with a body that is not the expected JSON
        ├── TransportError      *    timeout, reset, DNS, TLS
        └── ExportError              a v2 billing export failed or timed out

    * also a RetriableError: worth trying again, within the retry budget.

Messages never contain secrets: the code building them only ever sees ids,
URLs without query strings and Microsoft's own error text.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ApplyError",
    "AuthenticationError",
    "BadResponseError",
    "ConfigError",
    "ConflictError",
    "ConnectorError",
    "CurrencyMismatchError",
    "DataError",
    "DatabaseError",
    "ExportError",
    "InputError",
    "LockedError",
    "NotFoundError",
    "NoticeError",
    "OutputError",
    "PcsyncError",
    "PermissionDeniedError",
    "RecordError",
    "RetriableError",
    "SafetyLimitError",
    "ServerError",
    "ThrottledError",
    "TransportError",
]


class PcsyncError(Exception):
    """Root of every error pcsync raises on purpose.

    ``exit_code`` is what the command line exits with: 2 when the user must
    fix how pcsync is called or configured, 1 for a failure at run time.
    """

    exit_code = 1


class ConfigError(PcsyncError):
    """The configuration is missing, malformed or inconsistent.

    ``problems`` holds every problem found, each naming its key, so a user can
    fix them all in one go.
    """

    exit_code = 2

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class InputError(PcsyncError):
    """An input file or command-line value is unusable.

    ``problems`` lists every bad row or value (``file:row: field: reason``).
    """

    exit_code = 2

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class DataError(PcsyncError):
    """Data (stored, imported or received) breaks one of the product's rules."""


class RecordError(DataError):
    """One record received from Microsoft cannot be read (unknown status, bad date…).

    It fails its own unit of work only (one customer's subscriptions, one
    invoice's lines); the sync keeps it aside with ``payload`` (the record as
    received, cut to a size that fits a table) and ``source`` (where it came from,
    a URL without its query, which may hold a token) and goes on.
    """

    PAYLOAD_LIMIT = 65_536  # characters

    def __init__(self, message: str, *, payload: str | None, source: str | None) -> None:
        super().__init__(message)
        self.payload = payload[: self.PAYLOAD_LIMIT] if payload is not None else None
        self.source = source


class CurrencyMismatchError(DataError):
    """Amounts in two different currencies were combined."""


class DatabaseError(PcsyncError):
    """The database cannot be reached, or its schema is not the one expected."""


class LockedError(PcsyncError):
    """Another pcsync run holds the database's run lock."""


class SafetyLimitError(PcsyncError):
    """A destructive action was refused as a whole by a configured safety limit."""


class ApplyError(PcsyncError):
    """Some changes of an apply failed; the rest were made and a rerun finishes the work."""


class NoticeError(PcsyncError):
    """A notice could not be sent; the others were, and the next run retries it."""


class OutputError(PcsyncError):
    """A file pcsync writes (a report) could not be written; ``path`` names it.

    The file is not left half-written; free space or fix the folder's permissions
    and run the command again.
    """

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class ConnectorError(PcsyncError):
    """Talking to Microsoft (Entra ID, Partner Center, Graph, storage) failed."""


class AuthenticationError(ConnectorError):
    """Entra ID refused to issue a token, or Partner Center refused the token.

    ``code`` is the AADSTS code when Entra ID gave one.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermissionDeniedError(ConnectorError):
    """Microsoft refuses the app what pcsync needs (403 across customers): grant the rights."""


class ApiError(ConnectorError):
    """Microsoft answered a request with an error.

    Carries the HTTP ``status``, Microsoft's error ``code`` and ``description``
    and the ``request_id`` sent, so support cases can quote them.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        description: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.description = description
        self.request_id = request_id


class NotFoundError(ApiError):
    """The resource does not exist (404)."""


class ConflictError(ApiError):
    """The change conflicts with the resource's state (412 etag, invalid transition)."""


class RetriableError(ConnectorError):
    """A failure that may succeed when tried again (mixed into the classes marked *)."""


class ThrottledError(ApiError, RetriableError):
    """Partner Center's rate limit was hit (429); ``retry_after`` is in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(ApiError, RetriableError):
    """Microsoft's side failed (5xx)."""


class BadResponseError(ApiError, RetriableError):
    """A success status whose body is not the JSON expected (truncated, an error page)."""


class TransportError(RetriableError):
    """The request did not complete: timeout, connection reset, DNS or TLS failure."""


class ExportError(ConnectorError):
    """A v2 billing export operation failed, or did not finish before its deadline."""
