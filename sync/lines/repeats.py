"""Lines Microsoft repeats: kept once per occurrence, numbered 1, 2, … after writing.

A Bloom filter over an invoice's line digests tells almost every line is a
first without asking the database; only suspected repeats are looked up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sync.lines.batch import Batch
from sync.lines.rows import DIGEST

__all__ = ["SeenFilter", "may_repeat", "number_repeats"]


def _two_bits(pair: int) -> int:
    return (1 << (pair & 63)) | (1 << (pair >> 6))


# Every 64-bit word with two bits set, by 12 bits of a hash: a mask is one lookup.
_MASKS = [_two_bits(pair) for pair in range(1 << 12)]


class SeenFilter:
    """A Bloom filter over the line digests of one invoice (2 MB at most, whatever its size).

    "Not seen" is certain, so almost every line is known to be the first of its
    kind without asking the database; only lines that may have been seen (true
    repeats, and some 1,300 at a million lines by chance: one query) are looked
    up in what was stored. Its 2 MB count in a sync's peak memory (4 MB suspected
    five times fewer lines; the memory was worth more than a few lookups). It is
    blocked: a digest sets up to four bits of one 64-bit word, so a line costs one
    word read, not four scattered probes — this runs once a line under the
    interpreter lock. The hash is Python's own of the digest
    text (per process, which is all an invoice's filter needs).
    """

    def __init__(self) -> None:
        # A word is chosen by the hash's low 18 bits. Zeroed memory from the allocator is
        # resident only once written, so a period of a few lines costs a few pages, not 2 MB.
        self._words = memoryview(bytearray(8 << 18)).cast("Q")

    def add_all(self, digests: Iterable[str]) -> set[str]:
        """Remember ``digests``; return those that may have been added before."""
        words, masks = self._words, _MASKS
        maybe = set()
        for digest in digests:
            value = hash(digest)
            index = value & 0x3FFFF
            bits = masks[(value >> 19) & 4095] | masks[(value >> 31) & 4095]
            word = words[index]
            if word & bits == bits:
                maybe.add(digest)
            else:
                words[index] = word | bits
        return maybe


def may_repeat(batch: Batch, seen: SeenFilter) -> set[str]:
    """The batch's digests that may have been seen before (remembering all of them)."""
    return seen.add_all([row[DIGEST] for row in batch.rows])


# One lookup for a whole invoice's suspected repeats, within every database's parameter limit.
_LOOKUP_CHUNK = 10_000


def number_repeats(session: Session, table: Any, scope: Mapping[str, Any], maybe: set[str]) -> None:
    """Number identical lines 1, 2, … in the order they were written (all were stored as 1).

    ``maybe`` holds every digest met more than once, and a few the filter only
    suspected; the scope index answers from its own entries, in insertion order.
    """
    conditions = [getattr(table, key) == value for key, value in scope.items()]
    digests = sorted(maybe)
    written: dict[str, list[int]] = defaultdict(list)
    for start in range(0, len(digests), _LOOKUP_CHUNK):
        chunk = digests[start : start + _LOOKUP_CHUNK]
        query = select(table.id, table.content_hash).where(
            *conditions, table.content_hash.in_(chunk)
        )
        for row_id, digest in session.execute(query):
            written[digest].append(row_id)
    repeats = [
        {"id": row_id, "occurrence": number}
        for ids in written.values()
        for number, row_id in enumerate(sorted(ids), start=1)
        if number > 1
    ]
    if repeats:
        session.execute(update(table), repeats)
