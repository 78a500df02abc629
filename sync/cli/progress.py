"""The sync's progress: one bar on a terminal, a log line now and then otherwise.

The bar counts invoice documents (N of M, with the time left estimated from
them), and shows the lines read and the lines per second. It is cleared when
the run ends, so the command's summary is the last line on the terminal.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from sync.jobs import SyncOptions

__all__ = ["sync_progress"]

log = logging.getLogger("pcsync")


class _Counts:
    """Invoices done of how many, and lines read, since the start."""

    def __init__(self) -> None:
        self.invoices = 0
        self.total: int | None = None
        self.lines = 0
        self.started = time.monotonic()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.lines / elapsed if elapsed > 0 else 0.0


class _Bar:
    def __init__(self, progress: Progress, counts: _Counts) -> None:
        self.progress, self.counts = progress, counts
        self.task: TaskID = progress.add_task("", total=None, lines="", visible=False)

    def invoices(self, total: int) -> None:
        self.counts.total = total
        self.progress.update(self.task, total=total, visible=total > 0)
        self._show()

    def lines(self, _label: str, n: int) -> None:
        self.counts.lines += n
        self._show()

    def invoice_done(self) -> None:
        self.counts.invoices += 1
        self.progress.advance(self.task, 1)
        self._show()

    def _show(self) -> None:
        c = self.counts
        self.progress.update(
            self.task,
            description=f"invoices {c.invoices} of {c.total}",
            lines=f"{c.lines:,} lines, {c.rate():,.0f} lines/s",
        )


class _Log:
    def __init__(self, counts: _Counts) -> None:
        self.counts = counts
        self.logged = 0

    def invoices(self, total: int) -> None:
        self.counts.total = total
        if total:
            log.info("reading the lines of %d invoice document(s)", total)

    def lines(self, _label: str, n: int) -> None:
        self.counts.lines += n
        if self.counts.lines - self.logged >= 50_000:
            self.logged = self.counts.lines
            c = self.counts
            log.info(
                "invoices %d of %s, %d lines, %.0f lines/s", c.invoices, c.total, c.lines, c.rate()
            )

    def invoice_done(self) -> None:
        self.counts.invoices += 1


@contextmanager
def sync_progress(options: SyncOptions) -> Iterator[SyncOptions]:
    """``options`` with the progress callbacks set, for the length of the run."""
    counts = _Counts()
    if not sys.stderr.isatty():
        reporter: _Bar | _Log = _Log(counts)
        _attach(options, reporter)
        yield options
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[lines]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        _attach(options, _Bar(progress, counts))
        yield options


def _attach(options: SyncOptions, reporter: _Bar | _Log) -> None:
    options.on_progress = reporter.lines
    options.on_invoices = reporter.invoices
    options.on_invoice_done = reporter.invoice_done
