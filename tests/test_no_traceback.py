"""No traceback reaches a user: each bad input or failure is one line naming what to fix.

Exit 2 when the user must fix a file, a setting or an argument; 1 for a failure at
run time. Every case runs the real command line and leaves the database as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.cli import main
from tests.conftest import MINIMAL_CONFIG

AS_OF = "2026-11-25"


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``pcsync: error:`` line on stderr (and no traceback anywhere)."""
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.startswith("pcsync: error:")]
    assert len(lines) == 1, err
    return lines[0]


def reconciliations(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as c:
            return int(c.scalar(sa.text("SELECT count(*) FROM reconciliation_runs")) or 0)
    finally:
        engine.dispose()


@pytest.fixture
def initialised(write_config, db_url: str, capsys) -> Path:  # type: ignore[no-untyped-def]
    """A config file on a database with pcsync's schema."""
    path: Path = write_config(db_url=db_url)
    assert main(["--config", str(path), "init"]) == 0
    capsys.readouterr()
    return path


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (MINIMAL_CONFIG.encode("utf-16"), "UTF-16 text; save it as UTF-8"),
        (b"\x9c\x00\xff" + bytes(range(256)), "not text (byte 1 is not UTF-8); save it as UTF-8"),
    ],
    ids=["utf-16", "binary"],
)
def test_a_config_file_that_is_not_utf8_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, says: str
) -> None:
    path = tmp_path / "pcsync.toml"
    path.write_bytes(content)
    assert main(["--config", str(path), "runs"]) == 2
    assert error_line(capsys) == (
        f"pcsync: error: config file {path}: {says} TOML (see config.example.toml)"
    )


def test_a_ca_bundle_variable_naming_no_file(
    write_config, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nowhere" / "ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    assert main(["--config", str(write_config()), "sync"]) == 2
    line = error_line(capsys)
    assert line.startswith(
        f"pcsync: error: environment variable REQUESTS_CA_BUNDLE: no such file {missing}"
    )
    assert "or unset it" in line


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[billing]\npayment_terms_days = 999999999\n", "[billing] payment_terms_days"),
        (f"timeout_seconds = {2**64 + 1}\n", "[partner_center] timeout_seconds"),
        (
            f'[notifications.smtp]\nhost = "smtp.example.com"\ntimeout_seconds = {2**70}\n',
            "[notifications.smtp] timeout_seconds",
        ),
        (f"[schedule]\nmisfire_grace_seconds = {2**64}\n", "[schedule] misfire_grace_seconds"),
        ("[collections]\napproval_valid_days = 999999999\n", "[collections] approval_valid_days"),
        ('[notifications.smtp]\nhost = "h"\nport = 70000\n', "[notifications.smtp] port"),
    ],
    ids=["terms", "timeout-past-64-bits", "smtp-timeout", "misfire", "approval-days", "port"],
)
def test_a_config_number_out_of_its_range(
    write_config, capsys: pytest.CaptureFixture[str], extra: str, key: str
) -> None:  # type: ignore[no-untyped-def]
    path = write_config(extra)
    assert main(["--config", str(path), "runs"]) == 2
    line = error_line(capsys)
    assert line.startswith(f"pcsync: error: config file {path}: {key}: expected a number ")


@pytest.mark.parametrize("taken", ["file", "/dev/full"])
def test_report_out_naming_a_file(
    initialised: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], taken: str
) -> None:
    out = tmp_path / "taken.txt" if taken == "file" else Path(taken)
    if taken == "file":
        out.write_text("keep me")
    code = main(["--config", str(initialised), "report", "--as-of", AS_OF, "--out", str(out)])
    assert code == 2
    assert error_line(capsys) == (
        f"pcsync: error: --out: {out} is a file, not a folder; name a folder for the reports"
    )
    assert reconciliations(db_url) == 0  # checked before reconciling
    if taken == "file":
        assert out.read_text() == "keep me"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (
            "mysql://pcsync@db.example.com/pcsync",
            'expected a sqlite:/// or postgresql+psycopg:// URL, got "mysql"',
        ),
        ("mysql+pymysql://pcsync@db.example.com/pcsync", 'got "mysql"'),
        ("postgresql+pg8000://pcsync@db.example.com/pcsync", 'driver "pg8000" is not supported'),
        ("postgresql+asyncpg://pcsync@db.example.com/pcsync", 'driver "asyncpg" is not supported'),
        ("sqlite+pysqlcipher:///pcsync.db", 'driver "pysqlcipher" is not supported'),
        ("postgresql+nosuch://pcsync@db.example.com/pcsync", 'driver "nosuch" is not supported'),
    ],
)
def test_an_unsupported_database_or_driver(
    write_config, capsys: pytest.CaptureFixture[str], url: str, says: str
) -> None:  # type: ignore[no-untyped-def]
    path = write_config(db_url=url)
    assert main(["--config", str(path), "init"]) == 2
    line = error_line(capsys)
    assert line.startswith(f"pcsync: error: config file {path}: [database] url: ")
    assert says in line


def test_a_database_file_of_random_bytes(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "pcsync.db"
    garbage = bytes((n * 7919 + 13) % 256 for n in range(65_536))
    database.write_bytes(garbage)
    path = write_config(db_url=f"sqlite:///{database}")
    for command in (["init"], ["runs"], ["reconcile", "--as-of", AS_OF]):
        assert main(["--config", str(path), *command]) == 2
        line = error_line(capsys)
        assert line.startswith(
            f"pcsync: error: [database] url: {database} is not a pcsync database"
        )
        assert "move the file away and run `pcsync init`" in line
    assert database.read_bytes() == garbage


def _certificate_only() -> bytes:
    return b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"


@pytest.mark.parametrize(
    "content",
    [b"this is not PEM\n", b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00\xff", _certificate_only()],
    ids=["text", "binary-der", "certificate-without-key"],
)
def test_a_certificate_file_that_is_not_a_pem_private_key(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:  # type: ignore[no-untyped-def]
    pem = tmp_path / "app.pem"
    pem.write_bytes(content)
    extra = f'certificate_path = "{pem}"\ncertificate_thumbprint = "A1B2C3"\n'
    path = write_config(extra)
    assert main(["--config", str(path), "sync"]) == 2
    line = error_line(capsys)
    assert line.startswith(
        f"pcsync: error: config file {path}: [partner_center]: certificate_path: {pem} holds "
        "no unencrypted PEM private key ("
    )
    assert "openssl pkcs12" in line


def test_disk_full_while_writing_a_report(
    initialised: Path, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(initialised)]
    assert main([*base, "reconcile", "--as-of", AS_OF]) == 0
    before = reconciliations(db_url)
    out = tmp_path / "reports"
    out.mkdir()
    target = out / f"pcsync-{AS_OF}.xlsx"
    # The file is written under a temporary name first: every write to it fails with ENOSPC.
    (out / f".{target.name}.{os.getpid()}.partial").symlink_to("/dev/full")
    capsys.readouterr()
    assert main([*base, "report", "--as-of", AS_OF, "--format", "xlsx", "--out", str(out)]) == 1
    assert error_line(capsys) == (
        f"pcsync: error: report {target}: cannot write it (No space left on device); free "
        "space or fix the folder's permissions, then run the command again"
    )
    assert not target.exists()  # nothing half-written passes for a report
    assert not list(out.iterdir())  # nor is left beside it
    assert reconciliations(db_url) == before


@pytest.fixture
def drop_connection_on() -> Iterator[list[str]]:
    """Terminate the PostgreSQL session (as a restart or a failover would) just before the
    first statement starting with one of the given prefixes runs."""
    from tests.conftest import POSTGRES_URL

    prefixes: list[str] = []
    admin = sa.create_engine(POSTGRES_URL)
    fired: list[int] = []

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if fired or conn.dialect.name != "postgresql":
            return
        if not any(statement.lstrip().upper().startswith(p) for p in prefixes):
            return
        pid = cursor.connection.info.backend_pid
        fired.append(pid)
        with admin.begin() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            for _ in range(500):  # until the server has really let it go
                gone = not c.scalar(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": pid},
                )
                if gone:
                    break
                c.execute(sa.text("SELECT pg_sleep(0.01)"))

    sa.event.listen(sa.Engine, "before_cursor_execute", before)
    try:
        yield prefixes
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", before)
        admin.dispose()
    assert fired, "the connection was never dropped"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_dropped_mid_command(
    initialised: Path,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    drop_connection_on: list[str],
) -> None:
    drop_connection_on.append("INSERT INTO RECONCILIATION_RUNS")
    assert main(["--config", str(initialised), "reconcile", "--as-of", AS_OF]) == 1
    line = error_line(capsys)
    assert line.startswith(
        "pcsync: error: lost the connection to the database postgresql+psycopg://"
    )
    assert line.endswith("check that the database runs, then run the command again")
    assert reconciliations(db_url) == 0


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_unexpected_error_is_one_masked_line_and_with_v_a_masked_logged_traceback(
    initialised: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    log_format: str,
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("boom client_secret=hunter2-value")

    monkeypatch.setattr("sync.cli.ops.list_runs", broken)
    base = ["--log-format", log_format, "--config", str(initialised)]
    assert main([*base, "runs"]) == 1
    assert error_line(capsys) == (
        "pcsync: error: internal error: boom client_secret=*** (please report it with the log)"
    )

    assert main(["-v", *base, "runs"]) == 1
    _, err = capsys.readouterr()
    assert "hunter2-value" not in err
    *logged, last = err.strip().splitlines()
    assert last.startswith("pcsync: error: internal error: boom client_secret=***")
    if log_format == "json":
        entries = [json.loads(line) for line in logged]  # every log line is JSON
        (failure,) = [e for e in entries if "traceback" in e]
        assert "RuntimeError: boom client_secret=***" in failure["traceback"]
    else:
        assert "Traceback (most recent call last)" in err
        assert "RuntimeError: boom client_secret=***" in err


def test_a_pcsync_error_with_v_logs_its_traceback_as_json(
    write_config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pcsync.toml"
    path.write_bytes(MINIMAL_CONFIG.encode("utf-16"))
    assert main(["-v", "--log-format", "json", "--config", str(path), "runs"]) == 2
    _, err = capsys.readouterr()
    *logged, last = err.strip().splitlines()
    assert last.startswith(f"pcsync: error: config file {path}: UTF-16 text")
    (entry,) = [json.loads(line) for line in logged]
    assert "UnicodeDecodeError" in entry["traceback"]
    assert os.linesep not in last
