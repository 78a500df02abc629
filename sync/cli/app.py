"""The ``pcsync`` command group, what every command shares, and the entry point.

Every command loads the settings once, does its work through the same
functions the scheduler calls, and turns pcsync's errors into one actionable
line on stderr: exit 2 for usage and configuration, 1 for failures at run
time. ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from reconciliation.errors import ConfigError, InputError, PcsyncError
from reconciliation.text import one_line
from sync import __version__, audit
from sync.collections.approvals import resolve_customers
from sync.config import Settings, load_settings, resolve_config_path
from sync.db.engine import make_engine, make_session_factory, ping
from sync.db.migrate import require_current
from sync.errors import DatabaseError
from sync.runtime.logs import LogFormat, configure_logging, redact

__all__ = ["App", "cli", "main"]


log = logging.getLogger("pcsync")


@dataclass
class App:
    """What a command needs, built lazily so ``--help`` works without a config file."""

    config_path: Path
    verbosity: int
    log_format: LogFormat
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            secrets = (
                self._settings.partner_center.client_secret,
                self._settings.notifications.webhook_url,
            )
            configure_logging(
                self.verbosity,
                self.log_format,
                [secret.get_secret_value() for secret in secrets if secret],
            )
        return self._settings

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.settings.database.url)
        ping(engine)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a database whose schema is current (else: run `pcsync init`)."""
        require_current(self.engine)
        sessions = make_session_factory(self.engine)
        audit.attach_head(sessions, audit.head_path(self.settings))
        return sessions

    def close(self) -> None:
        """Release database connections (called when the command ends, even on error)."""
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.dispose()


state: dict[str, Any] = {"verbose": False}


def echo_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $PCSYNC_CONFIG, else ./pcsync.toml).",
)
@click.option("-v", "--verbose", count=True, help="More detail; with errors, the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr as text or JSON.",
)
@click.version_option(__version__, prog_name="pcsync")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, verbose: int, quiet: bool, log_format: str
) -> None:
    """Partner Center billing sync, reconciliation and collections for CSP partners."""
    verbosity = -1 if quiet else verbose
    state["verbose"] = verbose > 0
    fmt: LogFormat = "json" if log_format == "json" else "text"
    configure_logging(verbosity, fmt)
    app = App(resolve_config_path(config_path, os.environ), verbosity, fmt)
    state["app"] = app
    ctx.obj = app
    ctx.call_on_close(app.close)


def as_of_date(value: str | None, settings: Settings) -> date:
    if value is None:
        return datetime.now(ZoneInfo(settings.schedule.timezone)).date()
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"--as-of: expected a date like 2026-11-25, got {value!r}") from exc


def not_after_today(day: date, settings: Settings, what: str) -> None:
    """Refuse a future ``--as-of`` for a command that acts on it (a mistyped year would
    send final notices, or approve suspensions, for debts nobody owes yet)."""
    today = as_of_date(None, settings)
    if day > today:
        raise InputError(
            f"--as-of {day} is in the future: {what} what is due by today ({today}); "
            "leave out --as-of or give a date up to today"
        )


def customer_id_of(app: App, given: str | None) -> str | None:
    """A ``--customer`` value (tenant id, domain or name) as a customer id."""
    if given is None:
        return None
    with app.sessions() as session:
        return resolve_customers(session, [given])[given]


BY_OPTION = click.option("--by", "by", metavar="NAME", help="Who is acting (default: the OS user).")


def exit_code(exc: PcsyncError) -> int:
    """2 when the user must fix how pcsync is called or configured, 1 for a run-time failure."""
    return 2 if isinstance(exc, ConfigError | InputError) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pcsync`` script; returns the exit code."""
    try:
        code = _run(argv)
    except PcsyncError as exc:
        if state["verbose"]:  # through the log's formatter: masked, and JSON when asked
            log.error("%s", one_line(str(exc)), exc_info=exc)
        problems: tuple[str, ...] = getattr(exc, "problems", (str(exc),))
        if isinstance(exc, ConfigError) and problems != (str(exc),):  # one line per problem
            where = str(exc).split(":", 1)[0]
            for problem in problems:
                _error_line(f"{where}: {problem}")
        else:
            for problem in problems if problems != (str(exc),) else ():
                _error_line(problem)
            _error_line(str(exc))
        return exit_code(exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("pcsync: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("pcsync: interrupted", err=True)
        return 130
    except SQLAlchemyError as exc:
        return _unexpected(exc, "database error", "check [database] url and that the database runs")
    except Exception as exc:
        return _unexpected(exc, "internal error", "please report it with the log")
    return code


def _run(argv: list[str] | None) -> int:
    """Run the command; its exit code (a command's ``Exit(n)``, as click hands it back)."""
    try:
        returned = cli.main(args=argv, prog_name="pcsync", standalone_mode=False)
        return returned if isinstance(returned, int) else 0
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        app = state.get("app")
        engine = app.__dict__.get("engine") if isinstance(app, App) else None
        where = f" {engine.url.render_as_string(hide_password=True)}" if engine else ""
        raise DatabaseError(
            f"lost the connection to the database{where} ({_first_line(exc)}); the "
            "interrupted work was rolled back: check that the database runs, then run "
            "the command again"
        ) from exc


def _first_line(exc: BaseException) -> str:
    origin = getattr(exc, "orig", None) or exc
    return (str(origin).strip().splitlines() or [type(origin).__name__])[0][:300]


def _error_line(text: str) -> None:
    """One ``pcsync: error:`` line: masked, and inert on a terminal (it may quote Microsoft)."""
    click.echo(f"pcsync: error: {one_line(redact(text))}", err=True)


def _unexpected(exc: BaseException, what: str, remedy: str) -> int:
    """One masked line for an error nobody raised on purpose; the traceback goes to the log.

    A bare traceback would bypass the secret masking and ``--log-format json``.
    """
    first = _first_line(exc)
    if "database is locked" in first:
        remedy = "another process held a write lock too long; retry when the sync has finished"
    if state["verbose"]:  # through the log's formatter: masked, and JSON when asked
        logging.getLogger("pcsync").error("%s: %s", what, first, exc_info=exc)
    _error_line(f"{what}: {first} ({remedy})")
    return 1
