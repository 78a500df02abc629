"""Errors of talking to Microsoft (Entra ID, Partner Center, Graph, export storage).

::

    ConnectorError
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

:class:`RecordError` (one received record cannot be read) is a
:class:`~reconciliation.errors.DataError`: it sets a record aside, it does not fail the call.
"""

from __future__ import annotations

from reconciliation.errors import DataError, PcsyncError

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadResponseError",
    "ConflictError",
    "ConnectorError",
    "ExportError",
    "NotFoundError",
    "PermissionDeniedError",
    "RecordError",
    "RetriableError",
    "ServerError",
    "ThrottledError",
    "TransportError",
]


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
