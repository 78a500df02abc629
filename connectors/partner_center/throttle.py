"""Client-side rate limiting: a token bucket per endpoint family.

Partner Center throttles per partner tenant (500 subscription calls a minute,
for instance); pacing ourselves under a ceiling keeps 429s the exception.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allow at most ``per_minute`` requests a minute per family, with bursts up to a tenth."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = per_minute / 60.0
        self._capacity = max(1.0, per_minute / 10.0)
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, family: str) -> float:
        """Take one token for ``family``, waiting if none is left; return the seconds waited."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(family, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - last) * self._rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self._rate
            # Book the token now (possibly going negative) so concurrent callers queue up.
            self._buckets[family] = (tokens - 1, now)
        if wait > 0:
            self._sleep(wait)
        return wait
