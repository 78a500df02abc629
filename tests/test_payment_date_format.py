"""``[payments] date_format`` is checked when the config is loaded, not on every row."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.payments.rows import ReadRules, RowChecker
from reconciliation.errors import ConfigError, InputError
from sync.cli import main
from sync.config import load_settings
from sync.db.models import Payment
from sync.payments import count_payments, import_payments
from tests.books import C1, TWO_CUSTOMERS, open_books

EXPECTED = (
    "[payments] date_format: expected a strftime date format with a year, a month and a day, "
    'like "%d/%m/%Y" or "%Y-%m-%d", got '
)


def problems_of(path: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    return info.value.problems


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("%Y-%m", "it has no day (%d)"),
        ("%d/%m", "it has no year (%Y or %y)"),
        ("%m/%Y", "it has no day (%d)"),
        ("%d/%d/%Y", "it has no month (%m, %b or %B)"),
        (
            "dd/mm/yyyy",
            "it has no year (%Y or %y), no month (%m, %b or %B), no day (%d)",
        ),
        ("%%Y-%m-%d", "it has no year (%Y or %y)"),
        ("", "it has no year (%Y or %y), no month (%m, %b or %B), no day (%d)"),
        ("%Q", "%Q is not a directive strptime reads"),
        # strftime writes these on Linux; strptime refuses them.
        ("%e.%m.%Y", "%e is not a directive strptime reads"),
        ("%-d/%-m/%Y", "%- is not a directive strptime reads"),
        ("%Y-%m-%d%", "it ends in a lone % (a percent sign is written %%)"),
        (
            "%m/%m/%Y %d",
            "2026-11-21 is written '11/11/2026 21', which strptime cannot read back",
        ),
    ],
)
def test_a_format_that_cannot_read_back_its_dates_is_refused_at_load(
    write_config, value: str, problem: str
) -> None:
    path = write_config(f'[payments]\ndate_format = "{value}"\n')
    assert problems_of(path) == (f'{EXPECTED}"{value}": {problem}',)


def test_a_line_break_in_the_format_is_shown_escaped(write_config) -> None:
    path = write_config('[payments]\ndate_format = "%d/%m\\n"\n')
    assert problems_of(path) == (f'{EXPECTED}"%d/%m\\n": it has no year (%Y or %y)',)
    with pytest.raises(ConfigError) as info:
        load_settings(path, {})
    assert "\n" not in str(info.value)


def test_a_format_that_is_not_a_string_is_refused(write_config) -> None:
    path = write_config("[payments]\ndate_format = 2026\n")
    assert problems_of(path) == ("[payments] date_format: expected a string, got 2026",)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("%d/%m/%Y", "03/02/2026"),
        ("%m/%d/%Y", "02/03/2026"),
        ("%d.%m.%Y", "03.02.2026"),
        ("%Y-%m-%d", "2026-02-03"),
        ("%d-%b-%Y", "03-Feb-2026"),
        ("%d %B %Y", "03 February 2026"),
        ("%y%m%d", "260203"),
        ("%Y-%m-%dT%H:%M:%S%z", "2026-02-03T10:00:00+01:00"),  # a timestamp's date
    ],
)
def test_formats_with_a_year_month_and_day_load_and_read_their_dates(
    write_config, migrated, tmp_path: Path, value: str, text: str
) -> None:
    settings, sessions = open_books(
        lambda **kw: write_config(f'[payments]\ndate_format = "{value}"\n', **kw),
        migrated,
        TWO_CUSTOMERS,
    )
    assert settings.payments.date_format == value
    path = tmp_path / "p.csv"
    path.write_text(f"customer,date,amount,currency,reference\n{C1},{text},1.00,USD,R-1\n")
    result = import_payments(settings, sessions, path)
    assert result.imported == 1
    with sessions() as session:
        assert session.scalars(sa.select(Payment.payment_date)).all() == [date(2026, 2, 3)]


@pytest.mark.parametrize("dry_run", [False, True])
def test_cli_refuses_a_bad_format_in_one_line_and_imports_nothing(
    write_config, migrated, tmp_path: Path, capsys, dry_run: bool
) -> None:
    _, sessions = open_books(write_config, migrated, TWO_CUSTOMERS)
    config = write_config(
        '[payments]\ndate_format = "%d/%m"\n', db_url=migrated.url.render_as_string(False)
    )
    # ISO dates are read whatever the format: without the check at load, this file imports.
    path = tmp_path / "payments.csv"
    path.write_text(f"customer,date,amount,currency,reference\n{C1},2026-11-01,1.00,USD,R-1\n")
    argv = ["--config", str(config), "payments", "import", str(path)]
    code = main([*argv, "--dry-run"] if dry_run else argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines() == [
        f'pcsync: error: config file {config}: {EXPECTED}"%d/%m": it has no year (%Y or %y)'
    ]
    assert out == ""
    assert count_payments(sessions) == 0


def _books_under(write_config, migrated, value: str):  # type: ignore[no-untyped-def]
    return open_books(
        lambda **kw: write_config(f'[payments]\ndate_format = "{value}"\n', **kw),
        migrated,
        TWO_CUSTOMERS,
    )


def _dates_read(settings, sessions, path: Path) -> tuple[list[date], list[date]]:  # type: ignore[no-untyped-def]
    """The dates the dry run (the column reader) and the import (the row checker) read."""
    preview = import_payments(settings, sessions, path, dry_run=True)
    previewed = [p.payment_date for c in preview.in_credit for p in c.payments]
    import_payments(settings, sessions, path)
    with sessions() as session:
        stored = list(session.scalars(sa.select(Payment.payment_date).order_by(Payment.reference)))
    return previewed, stored


def test_a_timestamp_with_a_utc_offset_is_dated_in_utc(
    write_config, migrated, tmp_path: Path
) -> None:
    """Payment dates are calendar dates in UTC: 23:30 in New York on 30 November is
    04:30 UTC on 1 December; 00:30 in Berlin on 1 December is 23:30 UTC on 30 November."""
    settings, sessions = _books_under(write_config, migrated, "%Y-%m-%dT%H:%M:%S%z")
    path = tmp_path / "p.csv"
    path.write_text(
        "customer,date,amount,currency,reference\n"
        f"{C1},2026-11-30T23:30:00-05:00,100.00,USD,TS-1\n"
        f"{C1},2026-12-01T00:30:00+01:00,100.00,USD,TS-2\n"
        f"{C1},2026-11-15T12:00:00+00:00,100.00,USD,TS-3\n"
    )
    expected = [date(2026, 12, 1), date(2026, 11, 30), date(2026, 11, 15)]
    previewed, stored = _dates_read(settings, sessions, path)
    assert stored == expected
    assert sorted(previewed) == sorted(expected)


def test_a_format_written_in_isos_shape_is_read_its_own_way_not_as_iso(
    write_config, migrated, tmp_path: Path
) -> None:
    """The format "%Y-%d-%m" writes 2 November 2026 as 2026-02-11: read so, never as 11 February; a
    text the format cannot read is refused, not read as ISO (2026-11-30 has no month 30)."""
    settings, sessions = _books_under(write_config, migrated, "%Y-%d-%m")
    path = tmp_path / "p.csv"
    path.write_text(f"customer,date,amount,currency,reference\n{C1},2026-02-11,100.00,USD,D-1\n")
    previewed, stored = _dates_read(settings, sessions, path)
    assert stored == previewed == [date(2026, 11, 2)]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"customer,date,amount,currency,reference\n{C1},2026-11-30,1.00,USD,D-2\n")
    for dry_run in (True, False):
        with pytest.raises(InputError) as info:
            import_payments(settings, sessions, bad, dry_run=dry_run)
        assert info.value.problems == (
            "bad.csv:2: date: not a date: '2026-11-30' (expected %Y-%d-%m, like 2026-01-11) "
            "(nothing imported; fix it, or use --skip-bad-rows)",
        )


def test_iso_dates_are_still_read_under_a_format_that_cannot_be_mistaken_for_iso(
    write_config, migrated, tmp_path: Path
) -> None:
    settings, sessions = _books_under(write_config, migrated, "%d/%m/%Y")
    path = tmp_path / "p.csv"
    path.write_text(
        "customer,date,amount,currency,reference\n"
        f"{C1},02/11/2026,1.00,USD,D-1\n{C1},2026-11-03,1.00,USD,D-2\n"
    )
    previewed, stored = _dates_read(settings, sessions, path)
    assert stored == [date(2026, 11, 2), date(2026, 11, 3)]
    assert sorted(previewed) == stored


def _checker(fmt: str) -> RowChecker:
    return RowChecker(ReadRules(columns={}, today=date(2026, 12, 6), date_format=fmt), str)


def test_an_iso_date_is_read_beside_a_format_with_an_offset() -> None:
    """ "%Y-%m-%d%z" writes an offset after the date: it cannot be mistaken for ISO's order."""
    assert _checker("%Y-%m-%d%z").parse_date("2026-11-21") == date(2026, 11, 21)


def test_the_example_a_date_error_gives_is_itself_read() -> None:
    """Following the error's advice must not be refused again: with %z it carries an offset."""
    checker = _checker("%Y-%m-%dT%H:%M:%S%z")
    reason = checker.parse_date("30/11/2026")
    assert isinstance(reason, str)
    example = re.search(r"like (\S+?)[,)]", reason)
    assert example is not None, reason
    assert example.group(1) == "2026-11-01T00:00:00+0000"
    assert checker.parse_date(example.group(1)) == date(2026, 11, 1)
