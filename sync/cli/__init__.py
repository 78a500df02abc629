"""The ``pcsync`` command line: the group and entry point (``app``), and one module per
group of commands, each registering its commands on the group when imported."""

from sync.cli import audit, collections, demo, finance, ops  # noqa: F401 - they register
from sync.cli.app import cli, main

__all__ = ["cli", "main"]
