"""Failpoints: named places in a run where a test can pause or kill the process.

Tests that run a second process against a sync, or kill one, need to know
exactly where the first one stands; wall-clock sleeps land anywhere (often
while Python is still importing). A failpoint is armed by one environment
variable, read once per process::

    PCSYNC_FAILPOINT="lines.batch:40=pause:/tmp/dir"   # pause at the 40th batch
    PCSYNC_FAILPOINT="invoice.committed:2=kill"        # SIGKILL after the 2nd invoice

``pause:DIR`` writes ``DIR/paused`` (with the pid) and waits until ``DIR/resume``
exists. Unarmed, :func:`reached` costs a dictionary lookup. Production never
sets the variable.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["POINTS", "reached"]

# Every point the code passes, so a typo in a test's variable is an error, not a no-op.
POINTS = frozenset(
    {
        "lines.batch",  # after a batch of an invoice's lines was handed to the writer
        "invoice.before_commit",  # an invoice's lines written, its transaction not committed
        "invoice.committed",  # an invoice's lines committed
        "subscriptions.read",  # a customer's subscriptions read, not yet stored
        "report.lines",  # a row of the report's lines CSV handed to the writer
    }
)
_PAUSE_LIMIT = 300.0  # seconds; a forgotten pause must not hang a test run for ever


@dataclass(frozen=True)
class _Armed:
    point: str
    hit: int
    action: str


def _parse(spec: str) -> _Armed | None:
    if not spec:
        return None
    where, _, action = spec.partition("=")
    point, _, hit = where.partition(":")
    if point not in POINTS or not (action == "kill" or action.startswith("pause:")):
        raise ValueError(f"PCSYNC_FAILPOINT: unknown point or action in {spec!r}")
    return _Armed(point, int(hit or 1), action)


_armed = _parse(os.environ.get("PCSYNC_FAILPOINT", ""))
_hits: Counter[str] = Counter()


def reached(point: str) -> None:
    """Count a pass through ``point``; act if this is the armed pass."""
    if _armed is None or point != _armed.point:
        return
    _hits[point] += 1
    if _hits[point] != _armed.hit:
        return
    if _armed.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif _armed.action.startswith("pause:"):
        folder = Path(_armed.action.removeprefix("pause:"))
        (folder / "paused").write_text(str(os.getpid()))
        deadline = time.monotonic() + _PAUSE_LIMIT
        while not (folder / "resume").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
