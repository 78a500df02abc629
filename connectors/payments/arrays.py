"""Arrow arrays to and from numpy and Python lists, without pyarrow's pandas bridge.

``pa.array(...)`` and ``Array.to_numpy()`` look for pandas first and import it
when it is installed: a fifth of a second or more, longer than reading a
hundred thousand payments. These build and read the buffers directly; they
take arrays without nulls (a payment file's cells are never null).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["flags", "ints", "numbers", "strings"]

_TYPES = {
    pa.int8(): np.int8,
    pa.int16(): np.int16,
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.uint64(): np.uint64,
}


def ints(values: Any) -> pa.Array:
    """An Arrow int64 array of ``values`` (a numpy array or a sequence of ints)."""
    data = np.ascontiguousarray(values, np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def strings(values: Sequence[str]) -> pa.Array:
    """An Arrow string array of ``values``."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    kind = pa.large_string()
    if offsets[-1] < 2**31:
        offsets, kind = offsets.astype(np.int32), pa.string()
    return pa.Array.from_buffers(
        kind, len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def numbers(array: pa.Array) -> np.ndarray[Any, Any]:
    """A numeric Arrow array (no nulls) as numpy (a view of its buffer)."""
    if array.null_count:
        raise ValueError("an array with nulls")
    dtype = _TYPES[array.type]
    if not len(array):
        return np.zeros(0, dtype)
    buffer = array.buffers()[1]
    return np.frombuffer(buffer, dtype, len(array), array.offset * np.dtype(dtype).itemsize)


def flags(array: pa.Array) -> np.ndarray[Any, Any]:
    """A boolean Arrow array (no nulls) as numpy."""
    if array.null_count:
        raise ValueError("an array with nulls")
    if not len(array):
        return np.zeros(0, bool)
    bits = np.frombuffer(array.buffers()[1], np.uint8)
    unpacked = np.unpackbits(bits, bitorder="little")
    return unpacked[array.offset : array.offset + len(array)].astype(bool)
