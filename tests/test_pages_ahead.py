"""Pages fetched ahead: the same pages in the same order, one request at a time, errors in place."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest

from connectors.partner_center.paging import OffsetPaginator, PageRequest, pages


class Service:
    """Three pages of two items; records every request and how many ran at once."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.requests: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()
        self._fail_at = fail_at

    def fetch(self, request: PageRequest) -> Mapping[str, Any]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(0.01)  # a request takes a while: the caller overlaps it or not
            self.requests.append(request.url)
            offset = int(request.url.split("offset=")[1].split("&")[0])
            if self._fail_at is not None and offset >= self._fail_at:
                raise ConnectionResetError(f"reset at offset {offset}")
            last = offset >= 4
            body: dict[str, Any] = {"items": [offset, offset + 1]}
            if not last:
                body["links"] = {"next": {"uri": "next"}}
            return body
        finally:
            with self._lock:
                self.running -= 1


def _read(service: Service, *, ahead: bool) -> list[int]:
    paginator = OffsetPaginator(2)
    first = paginator.first("https://pc.test/v1/x")
    return [
        item
        for _, body in pages(service.fetch, first, paginator, ahead=ahead)
        for item in body["items"]
    ]


def test_ahead_reads_the_same_pages_in_the_same_order_one_request_at_a_time() -> None:
    plain, ahead = Service(), Service()
    assert _read(ahead, ahead=True) == _read(plain, ahead=False) == [0, 1, 2, 3, 4, 5]
    assert ahead.requests == plain.requests
    assert ahead.most_at_once == 1


def test_an_error_fetching_a_later_page_comes_after_the_pages_before_it() -> None:
    service = Service(fail_at=4)
    got: list[int] = []
    paginator = OffsetPaginator(2)

    def read() -> None:
        for _, body in pages(
            service.fetch, paginator.first("https://pc.test/v1/x"), paginator, ahead=True
        ):
            got.extend(body["items"])

    with pytest.raises(ConnectionResetError, match="offset 4"):
        read()
    assert got == [0, 1, 2, 3]


def test_a_caller_that_stops_early_leaves_no_request_running() -> None:
    service = Service()
    paginator = OffsetPaginator(2)
    walk = pages(service.fetch, paginator.first("https://pc.test/v1/x"), paginator, ahead=True)
    next(walk)  # the second page is on its way now
    walk.close()
    assert service.running == 0
    assert len(service.requests) <= 2  # the one it had, the one on its way (or cancelled)
