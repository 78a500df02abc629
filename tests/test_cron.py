"""[schedule] cron expressions mean what crontab means: 0 and 7 are Sunday, 1-5 is Mon–Fri."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from reconciliation.errors import ConfigError
from sync.collections.notice_parts import suspension_date
from sync.config import load_settings
from sync.config.cron import crontab_trigger

WriteConfig = Callable[..., Path]

MONDAY = datetime(2026, 11, 30, tzinfo=ZoneInfo("UTC"))  # a Monday, midnight


def fires(expr: str, days: int = 7, start: datetime = MONDAY) -> list[datetime]:
    """Every time the expression fires from ``start`` for ``days`` days."""
    trigger = crontab_trigger(expr, "UTC")
    end = start + timedelta(days=days)
    found: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        found.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    return found


def weekdays(expr: str) -> list[str]:
    """The days of one week, Monday to Sunday, on which the expression fires."""
    return list(dict.fromkeys(f.strftime("%a") for f in fires(expr)))


def test_monday_to_friday_is_1_to_5() -> None:
    week = fires("0 7 * * 1-5")
    assert [f.date() for f in week] == [date(2026, 11, 30) + timedelta(days=d) for d in range(5)]
    assert [f.strftime("%a %H:%M") for f in week] == [
        "Mon 07:00",
        "Tue 07:00",
        "Wed 07:00",
        "Thu 07:00",
        "Fri 07:00",
    ]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_0_and_7_are_both_sunday(sunday: str) -> None:
    week = fires(f"* * * * {sunday}")
    assert len(week) == 24 * 60
    assert {f.date() for f in week} == {date(2026, 12, 6)}


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("5-7", ["Fri", "Sat", "Sun"]),
        ("0-6", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("0-7", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("*", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("1,3,5", ["Mon", "Wed", "Fri"]),
        ("0,6", ["Sat", "Sun"]),
        ("*/2", ["Tue", "Thu", "Sat", "Sun"]),
        ("1-5/2", ["Mon", "Wed", "Fri"]),
        ("mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("sat-sun", ["Sat", "Sun"]),
        ("sun-sun", ["Sun"]),
        ("0-sun", ["Sun"]),
        ("Mon,wed,FRI", ["Mon", "Wed", "Fri"]),
        ("sun-tue", ["Mon", "Tue", "Sun"]),
    ],
)
def test_day_of_week_forms(field: str, days: list[str]) -> None:
    assert weekdays(f"0 7 * * {field}") == days


def test_a_restricted_day_of_month_and_day_of_week_fire_on_either() -> None:
    # crontab runs "the 1st, and every Monday"; 2026-12-01 is a Tuesday.
    assert [f.date() for f in fires("0 7 1 * 1", days=8)] == [
        date(2026, 11, 30),
        date(2026, 12, 1),
        date(2026, 12, 7),
    ]
    # A starred field leaves the other one alone: the 1st only when it is a Tuesday.
    assert [f.date() for f in fires("0 7 1 * */2", days=8)] == [date(2026, 12, 1)]


def test_the_time_zone_is_kept() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    trigger = crontab_trigger("0 7 * * 1-5", berlin)
    fire = trigger.get_next_fire_time(None, datetime(2026, 12, 4, 12, tzinfo=berlin))
    assert fire == datetime(2026, 12, 7, 7, tzinfo=berlin)


@pytest.mark.parametrize(
    ("as_of", "earliest"),
    [
        (date(2026, 12, 4), date(2026, 12, 7)),  # Friday: the weekend has no run, so Monday
        (date(2026, 12, 6), date(2026, 12, 7)),  # Sunday: Monday
        (date(2026, 12, 7), date(2026, 12, 8)),  # Monday: Tuesday
    ],
)
def test_the_notices_suspension_date_is_the_next_weekday_run(
    write_config: WriteConfig, as_of: date, earliest: date
) -> None:
    settings = load_settings(
        write_config('[schedule]\ntimezone = "Europe/Berlin"\ncollections = "0 7 * * 1-5"\n'), {}
    )
    assert suspension_date(settings, as_of) == earliest


def test_sunday_as_7_is_accepted_in_the_config(write_config: WriteConfig) -> None:
    settings = load_settings(write_config('[schedule]\ncollections = "0 7 * * 6,7"\n'), {})
    assert suspension_date(settings, date(2026, 12, 4)) == date(2026, 12, 5)
    assert suspension_date(settings, date(2026, 12, 5)) == date(2026, 12, 6)
    assert suspension_date(settings, date(2026, 12, 6)) == date(2026, 12, 12)


@pytest.mark.parametrize(
    ("cron", "why"),
    [
        ("0 7 * * 8", 'day of week "8" is not 0-7 (0 and 7 are Sunday) or sun-sat'),
        ("0 7 * * 1,9", 'day of week "9" is not 0-7 (0 and 7 are Sunday) or sun-sat'),
        ("0 7 * * monday", 'day of week "monday" is not 0-7 (0 and 7 are Sunday) or sun-sat'),
        (
            "0 7 * * 6-1",
            'day-of-week range "6-1" runs backwards; write it forwards, '
            'like "5-7" for Friday to Sunday',
        ),
        (
            "0 7 * * fri-mon",
            'day-of-week range "fri-mon" runs backwards; write it forwards, '
            'like "5-7" for Friday to Sunday',
        ),
        ("0 7 * * */0", 'step "0" in "*/0" is not a whole number from 1'),
    ],
)
def test_an_invalid_day_of_week_is_a_config_error(
    write_config: WriteConfig, cron: str, why: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(f'[schedule]\ncollections = "{cron}"\n'), {})
    assert info.value.problems == (
        '[schedule] collections: expected a cron expression like "0 */4 * * *" '
        f'(or "" to disable), got "{cron}": {why}',
    )
