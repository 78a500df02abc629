"""A ``[schedule]`` cron expression read as crontab reads it.

APScheduler 3's ``CronTrigger.from_crontab`` counts weekdays from 0 = Monday (its own
convention), where crontab counts from 0 = Sunday, with 7 Sunday too: a documented
``"0 7 * * 1-5"`` would run Tuesday to Saturday and ``7`` would be refused. So the
day-of-week field is rewritten as weekday names, which both read alike, before
APScheduler sees it. The other four fields mean the same to both and pass through.

Crontab also runs a line whose day of month and day of week are both restricted on
either day ("the 1st, and every Monday"); APScheduler would need both at once, so such
a line becomes two triggers, the earliest of which fires.
"""

from __future__ import annotations

from datetime import tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

__all__ = ["crontab_trigger"]

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(expr: str, timezone: tzinfo | str) -> BaseTrigger:
    """The trigger for a 5-field crontab expression (minute hour day month weekday).

    Raises ``ValueError`` saying what is wrong with the expression.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    days = _weekdays(weekday)

    def cron(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=day_of_week,
            timezone=timezone,
        )

    if day.startswith("*") or weekday.startswith("*"):
        return cron(day, days)
    return OrTrigger([cron(day, "*"), cron("*", days)])


def _weekdays(field: str) -> str:
    """A crontab day-of-week field as APScheduler's weekday names ("mon,tue,…" or "*")."""
    chosen: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        if slash and not (step_text.isdigit() and int(step_text) > 0):
            raise ValueError(f'step "{step_text}" in "{part}" is not a whole number from 1')
        step = int(step_text) if slash else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, _, end = span.partition("-")
            first = _day(start)
            last = _day(end, ends_range=first > 0)  # "sun-sun" is Sunday, "sat-sun" two days
            if first > last:
                raise ValueError(
                    f'day-of-week range "{span}" runs backwards; write it forwards, '
                    'like "5-7" for Friday to Sunday'
                )
        else:
            # "N/step" runs from N to the week's end, as cronie reads it.
            first = _day(span)
            last = 7 if slash else first
        chosen.update(d % 7 for d in range(first, last + 1, step))
    if len(chosen) == 7:
        return "*"
    return ",".join(_NAMES[d] for d in sorted(chosen))


def _day(token: str, ends_range: bool = False) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    name = token.lower()
    if name in _NAMES:
        # "sat-sun" ends on the Sunday after, as APScheduler read it before.
        return 7 if ends_range and name == "sun" else _NAMES.index(name)
    raise ValueError(f'day of week "{token}" is not 0-7 (0 and 7 are Sunday) or sun-sat')
