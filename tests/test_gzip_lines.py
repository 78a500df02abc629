"""The export blob reader: every line of a gzip stream, in order; a broken stream is loud."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from connectors.partner_center import prefetch
from connectors.partner_center.prefetch import gzip_lines


class Trickle(io.BytesIO):
    """A download that hands over a few bytes a read, as a slow socket does."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self._step = step

    def read(self, size: int | None = -1) -> bytes:
        return super().read(min(self._step, size if size and size > 0 else self._step))


def _lines(count: int) -> list[bytes]:
    return [b'{"Line": %d, "Text": "%s"}' % (n, b"x" * (n % 97)) for n in range(count)]


@pytest.mark.parametrize("step", [1 << 16, 7, 1 << 20])
def test_every_line_comes_out_in_order_whatever_the_chunks(step: int) -> None:
    lines = _lines(20_000)
    data = gzip.compress(b"\n".join(lines) + b"\n")
    assert list(gzip_lines(Trickle(data, step))) == lines


def test_lines_longer_than_a_chunk_and_blank_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefetch, "_OUT", 1000)  # inflated chunks far shorter than a line
    long = b'{"Text": "' + b"y" * 5000 + b'"}'
    data = gzip.compress(b"\n\n" + long + b"\r\n  \n" + long + b"\n" + b'{"Last": 1}')  # no \n
    assert list(gzip_lines(io.BytesIO(data))) == [long, long, b'{"Last": 1}']


def test_several_members_are_read_one_after_the_other_as_gzip_reads_them() -> None:
    first, second = _lines(300), _lines(500)
    data = (
        gzip.compress(b"\n".join(first) + b"\n")
        + b"\0" * 8  # padding between members
        + gzip.compress(b"\n".join(second))
    )
    assert list(gzip_lines(io.BytesIO(data))) == first + second
    assert list(gzip_lines(io.BytesIO(data))) == gzip.decompress(data).split(b"\n")


def test_a_stream_cut_off_raises_after_the_lines_before_the_cut() -> None:
    data = gzip.compress(b"\n".join(_lines(50_000)))
    got: list[bytes] = []

    def read_all() -> None:
        got.extend(gzip_lines(io.BytesIO(data[: len(data) // 2])))

    with pytest.raises(EOFError, match="ended before the end-of-stream"):
        read_all()
    assert got  # what came before the cut, nothing invented
    assert got == _lines(len(got))


def test_a_corrupt_stream_raises() -> None:
    data = bytearray(gzip.compress(b"\n".join(_lines(1000))))
    data[-6] ^= 0xFF  # the CRC in the trailer
    with pytest.raises(zlib.error):
        list(gzip_lines(io.BytesIO(bytes(data))))
    with pytest.raises(zlib.error):
        list(gzip_lines(io.BytesIO(b"this is not gzip at all")))


def test_a_read_error_reaches_the_consumer() -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("reset by peer")

    with pytest.raises(ConnectionResetError):
        list(gzip_lines(Broken()))


def test_an_empty_download_is_cut_off_not_a_blob_without_lines() -> None:
    """Even a blob of no lines is a gzip member (some 20 bytes): no bytes at all never came."""
    assert list(gzip_lines(io.BytesIO(gzip.compress(b"")))) == []
    for nothing in (b"", b"\0" * 64):  # no member, only the padding allowed between members
        with pytest.raises(EOFError, match="ended before the end-of-stream"):
            list(gzip_lines(io.BytesIO(nothing)))


def test_a_consumer_that_stops_early_stops_the_reading_thread() -> None:
    import threading

    lines = gzip_lines(io.BytesIO(gzip.compress(b"\n".join(_lines(200_000)))))
    assert next(lines) == _lines(1)[0]
    lines.close()
    for thread in threading.enumerate():
        if thread.name == "gunzip-ahead":
            thread.join(timeout=30)
            assert not thread.is_alive()
