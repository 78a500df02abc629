"""How the simulator misbehaves on purpose: refusals, throttling, faults, short pages,
lost answers.

Whether request number *n* fails, and how, depends only on the seed and *n*,
so a test that makes the same requests meets the same faults every time.
``Guarded`` is the gate every data request passes (token, refusals, 429, faults);
the other misbehaviours are asked for by the surface they strike.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from connectors.simulator.handler import BaseHandler
from connectors.simulator.wire import Handled, Reset

__all__ = ["FAULT_KINDS", "FaultPlan", "Guarded", "Throttle"]

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


class Guarded(BaseHandler):
    """A handler whose data requests pass the gate, and that can misbehave on request."""

    def _guard(self, audience: str, *, late_reset: bool = False) -> str | None:
        """Auth, throttling and faults for a data request; returns the fault to apply late.

        Raises ``Handled`` once it has answered (401, 429, 5xx, a non-JSON body).

        ``late_reset``: a reset happens after the request was processed (a write
        whose answer is lost), not before.
        """
        scope = self.sim.token_scope(self.headers.get("Authorization"))
        if scope is None or (("graph" in scope.lower()) != (audience == "graph")):
            self._error(
                401,
                "401",
                "Unauthorized: the access token is missing, invalid, expired "
                "or for another audience",
                {"WWW-Authenticate": "OAuth realm=urn:cpsvc:cpid:simulator"},
            )
            raise Handled
        if audience == "pc" and not self.sim.config.partner_center_app:
            self._error(
                403,
                "900150",
                "The supplied role does not have the rights to perform the requested operation",
            )
            raise Handled
        if audience == "graph" and not self.sim.config.graph_billing_permission:
            message = "Either the signed-in user or the app lacks the PartnerBilling.Read.All role"
            self._json({"error": {"code": "Forbidden", "message": message}}, 403)
            raise Handled
        if not self.sim.throttle.allow():
            seconds = self.sim.throttle.retry_after
            self._json(
                {
                    "statusCode": 429,
                    "message": f"Rate limit is exceeded. Try again in {seconds} seconds.",
                },
                429,
                {"Retry-After": str(seconds)},
            )
            raise Handled
        fault = self.sim.config.faults.next()
        self.fault = fault
        if fault == "5xx":
            self._error(503, "503", "The service is temporarily unavailable")
            raise Handled
        if fault == "reset" and not late_reset:
            raise Reset
        if fault == "badjson":
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
            raise Handled
        if fault == "slow":
            time.sleep(self.sim.config.faults.slow_seconds)
        return fault

    def _capped(self, size: int) -> int:
        """The page size served: what was asked, or less when the service caps its pages."""
        cap = self.sim.config.page_cap
        return min(size, cap) if cap > 0 else size

    def _refuse_customer(self, customer: str) -> bool:
        """Answer 403 for a customer the partner may not reach; True when it did."""
        refused = self.sim.config.refused_customers.get(customer)
        if refused is None and customer in self.sim.data.unlisted:
            refused = "20002"  # the relationship ended: Microsoft's documented answer
        if refused == "":
            self._send(403, b"", content_type="application/json")
            return True
        if refused is not None:
            description = {
                "20002": f"The partner has no commerce relationship with the customer {customer}",
            }.get(refused, "Access denied")
            self._error(403, refused, description)
            return True
        return False

    def _answer_lost(self) -> bool:
        """True while the configured number of write answers still has to be lost."""
        with self.sim.lock:
            lose = self.sim.config.lose_patch_answers > 0
            if lose:
                self.sim.config.lose_patch_answers -= 1
        return lose
