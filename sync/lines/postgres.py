"""PostgreSQL: all of an invoice's line rows in one COPY, sent while the next are read.

The reading thread formats rows into COPY data (psycopg's formatter, which
needs the interpreter lock); a thread of ours sends it, about 1 MB ahead at most,
and the server stores rows as they arrive — no round trip per batch. Any error,
ours or the server's, ends the COPY and the caller rolls the invoice back.

The text format, with amounts and dates already text (``TextValues``): the
binary one has the client take every amount apart into base-10000 digits
under the interpreter lock, while the server parses text on a core of its own
(docs/performance.md).
"""

from __future__ import annotations

import queue
import threading
from contextlib import ExitStack, suppress
from typing import Any

from psycopg import Cursor
from psycopg.abc import Buffer
from psycopg.copy import Copy, LibpqWriter

from sync.lines.batch import Batch, TextValues

__all__ = ["CopyStream"]

# COPY data (in psycopg's ~32 KB buffers) allowed ahead of the server: ~1 MB, some six
# hundred rows. Part of the sync's peak memory, which has a budget (docs/performance.md).
_BUFFERS_AHEAD = 32


class _SendingThread(LibpqWriter):
    """psycopg's writer, sending from a thread of its own what the caller has formatted.

    Formatting rows needs the interpreter lock; sending and the server's work do
    not, so the two overlap. The queue is bounded: a slow server makes the
    caller wait rather than memory grow.
    """

    def __init__(self, cursor: Cursor[Any]) -> None:
        super().__init__(cursor)
        self._queue: queue.Queue[Buffer] = queue.Queue(maxsize=_BUFFERS_AHEAD)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _send(self) -> None:
        try:
            while data := self._queue.get():
                super().write(data)
        except BaseException as exc:  # handed to the caller at its next write or finish
            self._error = exc
            while self._queue.get():  # keep taking, so that the caller never blocks
                pass

    def write(self, data: Buffer) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._send, name="copy-send", daemon=True)
            self._thread.start()
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._thread is not None:
            self._queue.put(b"")
            self._thread.join()
        if self._error is not None and exc is None:
            raise self._error
        super().finish(exc)


class CopyStream:
    """Every batch of one invoice into a single COPY, opened with the first batch."""

    def __init__(self, cursor: Cursor[Any], table: str, texts: TextValues) -> None:
        self._cursor = cursor
        self._table = table
        self._texts = texts
        self._open = ExitStack()
        self._open.enter_context(cursor)
        self._copy: Copy | None = None

    def submit(self, batch: Batch) -> None:
        names, constants = self._texts.constants(batch)
        if self._copy is None:
            statement = f"COPY {self._table} ({', '.join(batch.columns + names)}) FROM STDIN"
            writer = _SendingThread(self._cursor)
            self._copy = self._open.enter_context(self._cursor.copy(statement, writer=writer))
        write_row = self._copy.write_row
        values = self._texts.flat(batch.columns, batch.rows)
        width = len(batch.columns)
        for start in range(0, len(values), width):
            write_row(values[start : start + width] + constants)

    def close(self) -> None:
        """Finish the COPY: the server's verdict on every row arrives here."""
        self._open.close()

    def abort(self, error: BaseException) -> None:
        """End the COPY with ``error`` (the server discards what it took); ``error`` is kept."""
        with suppress(Exception):
            self._open.__exit__(type(error), error, error.__traceback__)
