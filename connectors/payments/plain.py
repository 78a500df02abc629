"""Whether a CSV payment file is plain enough to be read by column, checked as it is read.

Plain: no quote or escape character, no NUL, lines ending in ``\\n`` or
``\\r\\n``, valid UTF-8, the header alone on the first line (the very cells the
record reader takes as the header), no byte order mark starting a line, no
line past the record reader's limit. :func:`plain_chunks` hands out whole
lines a megabyte at a time, each chunk checked, and raises :class:`NotPlain`
at the first that is not plain.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

from connectors.payments.files import PaymentFile
from connectors.payments.records import sniff_dialect

__all__ = ["CHUNK", "LONGEST_LINE", "NotPlain", "plain_chunks", "plain_dialect"]

CHUNK = 1 << 20  # bytes read and parsed at a time (about 14,000 rows of a payments export)
LONGEST_LINE = 1 << 20  # characters, where the record reader cuts a line


class NotPlain(Exception):
    """The file is not plain enough to be read by column: read it record by record."""


def plain_dialect(file: PaymentFile) -> tuple[str, set[bytes]]:
    """The file's delimiter and the bytes a plain file lacks (quote, escape, NUL); else NotPlain."""
    if file.path.suffix.lower() in (".xlsx", ".xlsm"):
        raise NotPlain("a workbook")
    try:
        with file.path.open(encoding="utf-8-sig", newline="") as text:
            dialect = sniff_dialect(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise NotPlain(str(exc)) from exc
    special = {b"\x00", b'"'}
    for char in (dialect.quotechar, dialect.escapechar):
        if char:
            special.add(char.encode())
    return str(dialect.delimiter), special


def plain_chunks(file: PaymentFile, delimiter: str, special: set[bytes]) -> Iterator[bytes]:
    """The file's lines after the header, about ``CHUNK`` bytes of whole lines at a time,
    each checked plain (see the module docstring); NotPlain at the first that is not."""
    with file.path.open("rb") as handle:
        header = handle.readline(LONGEST_LINE).removeprefix(codecs.BOM_UTF8)
        try:
            cells = header.decode("utf-8").removesuffix("\n").removesuffix("\r").split(delimiter)
        except UnicodeDecodeError as exc:
            raise NotPlain("not UTF-8") from exc
        if (
            not header.endswith(b"\n")
            or any(char in header for char in special)
            or b"\r" in header[:-2]
            or [cell.strip() for cell in cells] != list(file.header)
        ):
            raise NotPlain("the header is not alone on the first line")
        rest = b""
        while True:
            block = handle.read(CHUNK)
            data = rest + block
            if not data:
                return
            cut = data.rfind(b"\n") + 1 if block else len(data)
            if not cut:
                if len(data) > LONGEST_LINE:  # no line end for a megabyte: not this reader's
                    raise NotPlain("a line longer than the record reader takes")
                rest = data
                continue
            chunk, rest = data[:cut], data[cut:]
            if chunk.startswith(codecs.BOM_UTF8):  # Arrow would drop it; the checks refuse it
                raise NotPlain("a byte order mark at the start of a line")
            if any(char in chunk for char in special):
                raise NotPlain("quotes, escapes or NUL")
            if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
                raise NotPlain("a line ending other than \\n or \\r\\n")
            if not chunk.isascii():
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise NotPlain("not UTF-8") from exc
            yield chunk
