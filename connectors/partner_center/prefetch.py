"""The lines of a gzip download, inflated in a thread ahead of their consumer.

Without it, a blob download and the work done on each line take turns: the
socket buffer fills while lines are parsed and stored, and the sender stalls.
A thread reads compressed chunks and inflates them into a bounded queue; the
consumer only splits lines. The inflating is done a large chunk at a time:
zlib lets go of the interpreter lock for each call, and taking it back from
the busy consumer costs up to a switch interval (5 ms) a call — ``GzipFile``'s
8 KB reads cost seconds a million lines that way. At most ``_AHEAD`` chunks of
``_OUT`` bytes are held: about a MB, part of a sync's peak memory.

A gzip stream may hold several members (read one after the other, as
``GzipFile`` does); one cut off before its end, or failing its CRC, raises
(``EOFError``, ``zlib.error``), and the download is retried. So does a stream
without a single member — an empty body: even a blob of no lines is a gzip
member of some 20 bytes, so no bytes at all is a download that did not arrive,
not an export without lines.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = ["gzip_lines"]

_IN = 1 << 16  # compressed bytes a read
_OUT = 1 << 18  # inflated bytes a chunk, at most
_AHEAD = 4  # inflated chunks queued ahead of the consumer
_END = b""


class _Inflater(threading.Thread):
    """Reads ``source`` and puts its inflated bytes (then ``_END``, or an error) on ``chunks``."""

    def __init__(self, source: Any) -> None:
        super().__init__(daemon=True, name="gunzip-ahead")
        self._source = source
        self.chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=_AHEAD)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self._inflate()
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)

    def _inflate(self) -> None:
        member = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer (CRC, size)
        begun = False  # whether the current member has had any of its bytes
        members = 0  # begun so far
        while not self.stop.is_set():
            data = self._source.read(_IN)
            if not data:
                break
            while data:
                if not begun:
                    data = data.lstrip(b"\0")  # padding between members, as GzipFile allows
                    if not data:
                        break
                    begun = True
                    members += 1
                out = member.decompress(data, _OUT)
                if out:
                    self._put(out)
                if member.eof:
                    data = member.unused_data
                    member = zlib.decompressobj(wbits=31)
                    begun = False
                else:
                    data = member.unconsumed_tail
        if (begun or not members) and not self.stop.is_set():  # cut off, or nothing came
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    def _put(self, item: bytes | BaseException) -> None:
        while not self.stop.is_set():
            try:
                self.chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


def gzip_lines(source: Any) -> Iterator[bytes]:
    """The non-blank lines of the gzip stream ``source`` (``read(size) -> bytes``), stripped.

    Raises what reading or inflating raised, after the lines before it.
    """
    inflater = _Inflater(source)
    inflater.start()
    rest = b""
    try:
        while True:
            chunk = inflater.chunks.get()
            if isinstance(chunk, BaseException):
                raise chunk
            if not chunk:  # _END
                break
            lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
            rest = lines.pop()
            for line in lines:
                stripped = line.strip()
                if stripped:
                    yield stripped
        last = rest.strip()
        if last:
            yield last
    finally:
        inflater.stop.set()
