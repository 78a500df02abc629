"""pcsync's application layer: config, database, jobs, scheduler and the command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pcsync")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
