"""HTTP to Partner Center, Graph and export storage: headers, errors, retries, pacing.

One ``requests.Session`` (pooled, a timeout on every call) carries every
request. ``error_for`` is the one place that maps a status code to the
exception tree; ``HttpClient._send`` is the one retry loop:

* 429 waits ``Retry-After``; 5xx, timeouts, resets and bodies that are not the
  JSON expected back off exponentially with jitter — all within
  ``max_retries`` and reusing the request's ``MS-RequestId``;
* 401 gets a fresh token once, then fails;
* anything else fails at once with Microsoft's ``code`` and ``description``.

URLs in messages and logs never carry their query string (SAS tokens live there).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3

from connectors.partner_center.errors import (
    ApiError,
    AuthenticationError,
    BadResponseError,
    ConflictError,
    NotFoundError,
    RetriableError,
    ServerError,
    ThrottledError,
    TransportError,
)
from connectors.partner_center.options import ClientOptions
from connectors.partner_center.throttle import RateLimiter

__all__ = [
    "HttpClient",
    "Reply",
    "RequestStats",
    "TimeoutSession",
    "TokenSource",
    "display_url",
    "error_for",
    "parse_json",
    "parse_json_line",
]

log = logging.getLogger(__name__)


class TokenSource(Protocol):
    """Something that hands out bearer tokens per scope (``auth.TokenProvider``)."""

    def token(self, scope: str, *, fresh: bool = False) -> str:
        """A bearer token for ``scope``."""
        ...


class TimeoutSession(requests.Session):
    """A session whose every request has a timeout, including MSAL's own calls."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self._default_timeout = timeout_seconds
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=8)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._default_timeout)
        if kwargs["timeout"] is None:
            kwargs["timeout"] = self._default_timeout
        return super().request(method, url, *args, **kwargs)


@dataclass
class RequestStats:
    """Counters a sync run reports: requests sent, 429s met, retries made."""

    requests: int = 0
    throttled: int = 0
    retries: int = 0


def display_url(url: str) -> str:
    """The URL without its query string (which may hold a SAS signature)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def parse_json(content: bytes, where: str) -> Any:
    """Parse a JSON body with exact decimals; a body that is not JSON is retriable."""
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadResponseError(
            f"{where}: response is not valid JSON ({len(content)} bytes, {exc.__class__.__name__})"
        ) from exc


def _whole_body(response: requests.Response) -> bytes:
    """A streamed response's body read in one piece: ``Response.content`` joins 10 KB
    chunks, twice a large page's memory for a moment. The connection goes back to the
    pool once all is read; a body cut off is a transport error, as requests makes it."""
    try:
        body: bytes = response.raw.read(decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise requests.ConnectionError(str(exc)) from exc
    return body


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return None


def _error_fields(response: requests.Response) -> tuple[str | None, str | None]:
    """Microsoft's ``code`` and ``description`` from any of its error body shapes."""
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return None, (text[:300] or None)
    if not isinstance(body, Mapping):
        return None, None
    inner = body.get("error")
    if isinstance(inner, Mapping):  # Graph: {"error": {"code", "message"}}
        body = inner
    code = body.get("code", body.get("statusCode"))
    description = body.get("description") or body.get("message") or body.get("error_description")
    return (
        None if code is None else str(code),
        None if description is None else str(description)[:500],
    )


def error_for(response: requests.Response, request_id: str) -> ApiError | AuthenticationError:
    """The exception for a non-2xx response: the one place statuses map to the tree."""
    status = response.status_code
    code, description = _error_fields(response)
    where = f"{response.request.method} {display_url(response.url)}"
    detail = f"{code}: {description}" if code and description else (description or code or "")
    message = f"{where} -> {status}" + (f" {detail}" if detail else "")
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "description": description,
        "request_id": request_id,
    }
    if status == 401:
        return AuthenticationError(f"{message} (token rejected)", code=code)
    if status == 429:
        return ThrottledError(message, retry_after=_retry_after(response), **fields)
    if status >= 500:
        return ServerError(message, **fields)
    if status == 404:
        return NotFoundError(message, **fields)
    if status in (409, 412):
        return ConflictError(message, **fields)
    return ApiError(message, **fields)


@dataclass(frozen=True)
class Reply:
    """A successful response: parsed JSON body (or None), headers and status."""

    status: int
    body: Any
    headers: Mapping[str, str]
    request_id: str


class HttpClient:
    """Authenticated, paced and retried requests; the only code that calls ``requests``."""

    def __init__(
        self,
        session: requests.Session,
        tokens: TokenSource,
        options: ClientOptions,
        *,
        correlation_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        user_agent: str = "pcsync",
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._options = options
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limiter = RateLimiter(options.requests_per_minute, sleep=sleep)
        self.correlation_id = correlation_id or str(uuid.uuid4())
        self.stats = RequestStats()
        self._user_agent = user_agent

    # -- public verbs -------------------------------------------------------------

    def sign_in(self, scope: str) -> None:
        """Get a token for ``scope`` now (a preflight's check of the credentials)."""
        self._tokens.token(scope)

    def get_json(
        self,
        url: str,
        *,
        scope: str | None,
        family: str,
        headers: Mapping[str, str] | None = None,
        expect: Callable[[Any], None] | None = None,
        parse: Callable[[bytes, str], Any] | None = None,
    ) -> Reply:
        """GET a JSON document; ``expect`` validates it (a failure there is retried).

        ``parse`` reads the body instead of ``parse_json`` (and raises as it does)."""
        return self._send(
            "GET", url, scope=scope, family=family, headers=headers, expect=expect, parse=parse
        )

    def send_json(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        scope: str,
        family: str,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Reply:
        """POST/PATCH a JSON body; a 202 with no body gives ``Reply.body`` None."""
        return self._send(
            method,
            url,
            scope=scope,
            family=family,
            headers=headers,
            payload=body,
            request_id=request_id,
        )

    def stream(self, url: str, *, family: str = "storage") -> requests.Response:
        """GET without a bearer token (export blobs carry a SAS), body left unread."""
        reply = self._send("GET", url, scope=None, family=family, stream=True)
        response = reply.body
        assert isinstance(response, requests.Response)
        return response

    # -- the one retry loop ---------------------------------------------------------

    def _headers(self, scope: str | None, request_id: str) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "MS-RequestId": request_id,
            "MS-CorrelationId": self.correlation_id,
            "MS-PartnerCenter-Application": self._user_agent,
            "User-Agent": self._user_agent,
        }
        if scope is not None:
            headers["Authorization"] = "Bearer " + self._tokens.token(scope)
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        scope: str | None,
        family: str,
        headers: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        expect: Callable[[Any], None] | None = None,
        stream: bool = False,
        request_id: str | None = None,
        parse: Callable[[bytes, str], Any] | None = None,
    ) -> Reply:
        request_id = request_id or str(uuid.uuid4())
        data = None if payload is None else json.dumps(payload, default=str).encode()
        attempt, refreshed = 0, False
        where = f"{method} {display_url(url)}"
        while True:
            self._limiter.acquire(family)
            all_headers = self._headers(scope, request_id)
            if data is not None:
                all_headers["Content-Type"] = "application/json"
            all_headers.update(headers or {})
            error: Exception
            try:
                response = self._session.request(
                    method,
                    url,
                    headers=all_headers,
                    data=data,
                    timeout=self._options.timeout_seconds,
                    stream=stream or parse is not None,  # read whole by _reply (see there)
                )
                self.stats.requests += 1
                if response.status_code < 300:
                    if stream:
                        return Reply(response.status_code, response, response.headers, request_id)
                    return self._reply(response, where, request_id, expect, parse)
                error = error_for(response, request_id)
            except requests.RequestException as exc:
                error = TransportError(f"{where}: {type(exc).__name__} (no complete response)")
                error.__cause__ = exc
            except BadResponseError as exc:
                error = exc
            if isinstance(error, AuthenticationError) and scope is not None and not refreshed:
                refreshed = True
                log.info("%s: token rejected, getting a fresh one", where)
                self._tokens.token(scope, fresh=True)
                continue
            if isinstance(error, ThrottledError):
                self.stats.throttled += 1
            if not isinstance(error, RetriableError) or attempt >= self._options.max_retries:
                raise error
            delay = self._delay(attempt, error)
            attempt += 1
            self.stats.retries += 1
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                where,
                str(error).split(" -> ")[-1][:120],
                attempt,
                self._options.max_retries,
                delay,
            )
            self._sleep(delay)

    def _reply(
        self,
        response: requests.Response,
        where: str,
        request_id: str,
        expect: Callable[[Any], None] | None,
        parse: Callable[[bytes, str], Any] | None,
    ) -> Reply:
        content = response.content if parse is None else _whole_body(response)
        body = (parse or parse_json)(content, where) if content.strip() else None
        if expect is not None:
            try:
                expect(body)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BadResponseError(f"{where}: unexpected response shape ({exc})") from exc
        return Reply(response.status_code, body, response.headers, request_id)

    def _delay(self, attempt: int, error: Exception) -> float:
        if isinstance(error, ThrottledError) and error.retry_after is not None:
            # Jitter on top of Retry-After spreads out clients that were throttled together.
            return error.retry_after + self._rng.uniform(0, 1)
        base = min(
            self._options.backoff_cap_seconds, self._options.backoff_base_seconds * (1 << attempt)
        )
        return base * self._rng.uniform(0.5, 1.0)


_LINE_DECODER = json.JSONDecoder(parse_float=Decimal)


def parse_json_line(text: str, where: str) -> Any:
    """One JSON value with exact decimals; BadResponseError naming ``where`` if it is not."""
    try:
        return _LINE_DECODER.decode(text)
    except ValueError as exc:
        raise BadResponseError(f"{where} is not valid JSON") from exc
