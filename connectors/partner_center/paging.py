"""Paginators: one small object per Partner Center paging style.

* ``SeekPaginator`` — follow ``links.next`` verbatim (its relative URI, with or
  without ``/v1``, and its headers, i.e. ``MS-ContinuationToken``), stopping
  when a continuation token repeats (a server bug that would loop forever).
* ``OffsetPaginator`` — ``size``/``offset`` paging, next page while a page has
  ``links.next``, at the offset of what was received. A page shorter than asked
  is *not* the end: the service may cap its page size below the ``size`` asked
  for (Microsoft's SDK enumerator goes on while there is ``links.next`` too), and
  ``totalCount`` counts one page only.

A paginator only decides what to request next; ``pages`` is the fetch loop,
written once. With ``ahead``, the next page is fetched in a thread while the
caller works through the one it has: a page of 2,000 lines takes the service
about as long to serve as pcsync to store, and the two no longer take turns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from connectors.partner_center.errors import BadResponseError

__all__ = ["OffsetPaginator", "PageRequest", "SeekPaginator", "absolute_uri", "pages"]


@dataclass(frozen=True)
class PageRequest:
    """A page to fetch: absolute URL (query included) and extra headers."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


def absolute_uri(base_url: str, uri: str) -> str:
    """Resolve a ``links`` URI: absolute as is; ``/v1/...`` on the host; else host + ``/v1``."""
    if uri.startswith(("https://", "http://")):
        return uri
    path = uri if uri.startswith("/") else "/" + uri
    if not path.lower().startswith("/v1/"):
        path = "/v1" + path
    return base_url.rstrip("/") + path


def with_query(url: str, params: Mapping[str, Any]) -> str:
    """``url`` with ``params`` added to (or replacing those in) its query string."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({key: str(value) for key, value in params.items()})
    return urlunsplit(parts._replace(query=urlencode(query)))


def _get(body: Any, name: str) -> Any:
    """``body[name]``, the name in any case: Microsoft's .NET services read and may write
    property names case-insensitively, and a next link missed would end a listing early."""
    if not isinstance(body, Mapping):
        return None
    if name in body:
        return body[name]
    wanted = name.casefold()
    return next((v for k, v in body.items() if isinstance(k, str) and k.casefold() == wanted), None)


def _items(body: Mapping[str, Any]) -> list[Any]:
    items = _get(body, "items")
    if not isinstance(items, list):
        raise BadResponseError("collection response without an 'items' array")
    return items


def _next_link(body: Mapping[str, Any]) -> tuple[str, dict[str, str]] | None:
    """``links.next`` as (uri, headers), or None when the page says it is the last."""
    link = _get(_get(body, "links"), "next")
    if not isinstance(link, Mapping):
        return None
    headers = {
        str(_get(pair, "key")): str(_get(pair, "value"))
        for pair in _get(link, "headers") or ()
        if isinstance(pair, Mapping) and _get(pair, "key")
    }
    return str(_get(link, "uri") or ""), headers


class SeekPaginator:
    """Continuation-token paging (customers, onetime line items, unbilled, usage)."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url
        self._seen_tokens: set[str] = set()

    def items(self, body: Mapping[str, Any]) -> list[Any]:
        """The records of one page."""
        return _items(body)

    def next_request(self, body: Mapping[str, Any], current: PageRequest) -> PageRequest | None:
        """The request for the page after ``body``, or None when it was the last."""
        link = _next_link(body)
        if link is None:
            return None
        uri, headers = link
        token = next(
            (v for k, v in headers.items() if k.lower() == "ms-continuationtoken"),
            _get(body, "continuationToken"),
        )
        if token is not None:
            if token in self._seen_tokens:
                raise BadResponseError(
                    f"continuation token repeated while paging {urlsplit(current.url).path}; "
                    "stopping to avoid an endless loop"
                )
            self._seen_tokens.add(str(token))
            headers = {**headers, "MS-ContinuationToken": str(token)}
        url = absolute_uri(self._base_url, uri)
        if "seekoperation=" not in url.lower():
            url = with_query(url, {"seekOperation": "Next"})
        return PageRequest(url, headers)


class OffsetPaginator:
    """``size``/``offset`` paging (invoices, legacy office/azure line items).

    ``links.next`` says whether there is more; where the next page starts is what was
    received so far. Following the link's own offset could skip items: a service that
    serves 5 of the 10 asked may still link to offset 10.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._offset = 0

    def first(self, url: str) -> PageRequest:
        """The first page's request."""
        return PageRequest(with_query(url, {"size": self._size, "offset": 0}))

    def items(self, body: Mapping[str, Any]) -> list[Any]:
        """The records of one page."""
        return _items(body)

    def next_request(self, body: Mapping[str, Any], current: PageRequest) -> PageRequest | None:
        """The page after ``body`` while it has ``links.next``; None after an empty page or
        one without it. The offset only grows, so paging cannot loop."""
        count = len(_items(body))
        link = _next_link(body)
        if count == 0 or link is None:
            return None
        self._offset += count
        _uri, headers = link
        url = with_query(current.url, {"size": self._size, "offset": self._offset})
        return PageRequest(url, headers)


Body = Mapping[str, Any]


def pages(
    fetch: Callable[[PageRequest], Body],
    first: PageRequest,
    paginator: SeekPaginator | OffsetPaginator,
    *,
    ahead: bool = False,
) -> Iterator[tuple[PageRequest, Body]]:
    """Each page's request and body, in order, until the paginator says the last.

    ``ahead``: the next page's request is made (in a thread of its own, one at a
    time, in the same order) as soon as this page has arrived, so at most two
    pages are held. Only for a caller that makes no other request while it
    works through the pages. An error fetching the next page is raised when the
    caller asks for it, after this page.
    """
    if not ahead:
        request: PageRequest | None = first
        while request is not None:
            body = fetch(request)
            yield request, body
            request = paginator.next_request(body, request)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-ahead")
    try:
        current = first
        pending = pool.submit(fetch, current)
        while True:
            body = pending.result()
            following = paginator.next_request(body, current)
            if following is not None:
                pending = pool.submit(fetch, following)
            yield current, body
            if following is None:
                return
            current = following
    finally:
        # A page still on its way (the caller stopped early) is waited for, then dropped:
        # the client is never used by two threads at once.
        pool.shutdown(wait=True, cancel_futures=True)
