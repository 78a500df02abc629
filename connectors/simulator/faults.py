"""Deterministic throttling and fault injection for the simulator.

Whether request number *n* fails, and how, depends only on the seed and *n*,
so a test that makes the same requests meets the same faults every time.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["FAULT_KINDS", "FaultPlan", "Throttle"]

FAULT_KINDS = ("5xx", "reset", "truncate", "slow", "badjson")


@dataclass
class FaultPlan:
    """Which share of data requests fail, and the kinds of failure to pick from."""

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 7
    slow_seconds: float = 0.5
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> str | None:
        """The fault for the next data request, or None."""
        with self._lock:
            self._counter += 1
            n = self._counter
        if self.rate <= 0:
            return None
        rng = random.Random(f"{self.seed}:{n}")
        if rng.random() >= self.rate:
            return None
        return rng.choice(self.kinds)


class Throttle:
    """Answer 429 when more than ``limit`` data requests arrived within ``window`` seconds."""

    def __init__(self, limit: int, retry_after: int = 1, window: float = 60.0) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.window = window
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Record a request; False when it is over the rate."""
        if self.limit <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            while self._times and now - self._times[0] > self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True
