"""Payment references compared in memory: 64-bit hashes first, the text itself to confirm.

A dry run checks a million references against each other and against the
stored payments without writing them anywhere. Each reference is hashed to 64
bits a column at a time (numpy over the Arrow array's bytes); references are
equal only if their hashes are, so only rows whose hashes meet are compared
again, as text, exactly. A collision costs a comparison, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.payments.arrays import numbers as numpy_of
from connectors.payments.arrays import strings

__all__ = ["HashIndex", "Repeats", "repeats", "text_hashes"]

_U64 = np.uint64
_SEED = np.array([0x9E3779B97F4A7C15], _U64)
_MIX1 = np.array([0xFF51AFD7ED558CCD], _U64)
_MIX2 = np.array([0xC4CEB9FE1A85EC53], _U64)


def _mixed(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """murmur3's 64-bit finalizer, in place: every bit of the result depends on every bit."""
    for multiplier in (_MIX1, _MIX2):
        values ^= values >> _U64(33)
        values *= multiplier  # wraps modulo 2**64, as intended
    values ^= values >> _U64(33)
    return values


def text_hashes(array: pa.Array) -> np.ndarray[Any, Any]:
    """A 64-bit hash of each string of ``array`` (no nulls), from its UTF-8 bytes.

    Each string is taken as its own 8-byte words, the last zero-padded (Arrow pads a
    column of ASCII strings to one width in place; other strings are padded one by
    one), and the length and those words are mixed in turn: a string's hash depends
    on it alone, not on the strings beside it.
    """
    size = len(array)
    if size == 0:
        return np.zeros(0, _U64)
    lengths = numpy_of(pc.binary_length(array)).astype(np.int64)
    width = max(8, -(-int(lengths.max()) // 8) * 8)
    padded = pc.utf8_rpad(array, width=width, padding="\x00").cast(pa.string())
    _, offsets_buffer, data = padded.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int32, size + 1, padded.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    if end - start == size * width:  # every string as wide in bytes as in characters
        matrix = np.frombuffer(data, np.uint8, end - start, start).reshape(size, width)
    else:
        joined = b"".join(text.encode().ljust(width, b"\x00") for text in array.to_pylist())
        matrix = np.frombuffer(joined, np.uint8).reshape(size, width)
    words = matrix.view("<u8")
    hashes: np.ndarray[Any, Any] = lengths.astype(_U64) * _SEED
    # Only a string's own words are mixed in, never the padding up to the longest string
    # beside it: the same reference hashes the same in every array (a file's batch, the
    # stored payments read in chunks), or repeats across them would be missed.
    own_words = np.maximum(1, -(-lengths // 8))
    for column in range(width // 8):
        live = own_words > column
        if live.all():
            hashes ^= words[:, column]
            _mixed(hashes)
        else:
            some = hashes[live] ^ words[live, column]
            hashes[live] = _mixed(some)
    return hashes


class Repeats:
    """Rows whose reference an earlier row has: their positions and the first row of each."""

    def __init__(self, positions: np.ndarray[Any, Any], first_rows: np.ndarray[Any, Any]) -> None:
        self.positions = positions  # int64, into the arrays given to :func:`repeats`
        self.first_rows = first_rows  # int64, the row number of the reference's first row

    def __len__(self) -> int:
        return len(self.positions)


def repeats(
    numbers: np.ndarray[Any, Any],
    hashes: np.ndarray[Any, Any],
    texts: Callable[[np.ndarray[Any, Any]], list[str]],
) -> Repeats:
    """The rows (positions) whose reference a row of lower number has, exactly.

    ``numbers`` are the rows' numbers (unique), ``hashes`` their references'
    hashes; ``texts(positions)`` gives those positions' references as text.
    """
    empty = np.zeros(0, np.int64)
    if len(hashes) < 2:
        return Repeats(empty, empty)
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():  # the usual file: no reference twice
        return Repeats(empty, empty)
    order = np.argsort(hashes)  # equal hashes side by side, in any order: sorted by row below
    ordered = hashes[order]
    same = ordered[1:] == ordered[:-1]
    meets = np.zeros(len(order), bool)
    meets[1:] |= same
    meets[:-1] |= same
    candidates = order[meets]
    candidates = candidates[np.argsort(numbers[candidates], kind="stable")]
    first: dict[str, int] = {}
    positions: list[int] = []
    first_rows: list[int] = []
    for position, number, text in zip(
        candidates.tolist(), numbers[candidates].tolist(), texts(candidates), strict=True
    ):
        earliest = first.setdefault(text, number)
        if earliest != number:
            positions.append(position)
            first_rows.append(earliest)
    return Repeats(np.array(positions, np.int64), np.array(first_rows, np.int64))


class HashIndex:
    """Some of a file's rows by their references' hashes: which rows a reference may be."""

    def __init__(self, hashes: np.ndarray[Any, Any], rows: np.ndarray[Any, Any] | None) -> None:
        """``hashes`` of the rows at positions ``rows`` (None: all; others never match)."""
        order = np.argsort(hashes if rows is None else hashes[rows])
        self._rows = (order if rows is None else rows[order]).astype(np.int32)
        del order
        self._hashes = hashes[self._rows]

    def meeting(self, texts: list[str]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The pairs (index into ``texts``, row) whose hashes meet: maybe the same reference."""
        hashes = text_hashes(strings(texts))
        low = np.searchsorted(self._hashes, hashes, side="left")
        high = np.searchsorted(self._hashes, hashes, side="right")
        counts = high - low
        if not counts.any():
            empty = np.zeros(0, np.int64)
            return empty, empty
        which = np.repeat(np.arange(len(texts)), counts)
        # each pair's place in the index: its text's first place, plus its rank among them
        starts = np.repeat(low - np.cumsum(counts) + counts, counts)
        return which, self._rows[starts + np.arange(len(which))].astype(np.int64)
