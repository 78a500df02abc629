"""Read a download ahead of its consumer, so the sender never waits on our parsing.

Without it, a blob download and the work done on each line take turns: the
socket buffer fills while lines are parsed and stored, and the sender stalls.
A thread keeps reading compressed chunks into a bounded queue (at most
``chunks × chunk_size`` bytes ahead) while the consumer decompresses and parses.
The default, 1 MB of compressed JSON, is tens of thousands of lines: ahead
enough, and small, since it counts in a sync's peak memory.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import Any

__all__ = ["Prefetcher"]

_END = b""


class Prefetcher(io.RawIOBase):
    """A read-only file over ``source`` that a background thread fills ahead of time."""

    def __init__(self, source: Any, chunk_size: int = 1 << 16, chunks: int = 16) -> None:
        """``source`` is anything with ``read(size) -> bytes`` (a urllib3 response)."""
        super().__init__()
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=chunks)
        self._buffer = b""
        self._done = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(source, chunk_size), daemon=True, name="prefetch"
        )
        self._thread.start()

    def _fill(self, source: Any, chunk_size: int) -> None:
        try:
            while not self._stop.is_set():
                chunk = source.read(chunk_size)
                self._put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if item == _END:
                self._done = True
            self._buffer = item
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        self._stop.set()
        super().close()
