"""Time and date answers relative to a caller-supplied `now`.

The tool never reads the system clock, so the corpus generator gets the same answer for the same
`now`. Names of days and months are written here rather than taken from the locale.
"""
from __future__ import annotations

import datetime
import re

from interaction.tools.errors import ToolError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
MAX_OFFSET = datetime.timedelta(days=3660)  # "in N hours" looks at most ten years ahead

_DAYS_UNTIL = re.compile(r"\bdays?\s+(?:until|till|to|before)\s+(\d{4})-(\d{1,2})-(\d{1,2})\b")
_LATER = re.compile(r"\bin\s+(\d{1,7}(?:\.\d+)?|an?|half an)\s+(minutes?|mins?|hours?|hrs?|days?)\b")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_AMOUNTS = {"a": 1.0, "an": 1.0, "half an": 0.5}


def format_time(moment: datetime.datetime) -> str:
    """'15:07'."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def format_date(day: datetime.date) -> str:
    """'Saturday, 21 November 2026'."""
    return f"{WEEKDAYS[day.weekday()]}, {day.day} {MONTHS[day.month - 1]} {day.year}"


def answer(query: str, now: datetime.datetime) -> str:
    """Answers 'time', 'date', 'weekday', 'in N minutes|hours|days' and 'days until YYYY-MM-DD' at `now`."""
    text = query.lower().strip()
    if match := _DAYS_UNTIL.search(text):
        return _days_until(now.date(), *(int(group) for group in match.groups()))
    if match := _LATER.search(text):
        amount, unit = match.groups()
        offset = datetime.timedelta(**{_UNITS[unit[0]]: _AMOUNTS.get(amount) or float(amount)})
        if offset > MAX_OFFSET:
            raise ToolError("cannot look more than ten years ahead")
        try:
            later = now + offset
        except OverflowError:
            raise ToolError("that time is past the year 9999") from None
        if later.date() == now.date():
            return format_time(later)
        return f"{format_time(later)} on {format_date(later.date())}"
    words = set(re.findall(r"[a-z]+", text))
    if "in" in words:  # "time in Tokyo", "in 5 seconds": places and other offsets are not known
        raise ToolError(f"cannot answer {query.strip()!r}: only local time and offsets in minutes, "
                        "hours or days are known")
    if "date" in words:
        return format_date(now.date())
    if words & {"weekday", "day"}:
        return WEEKDAYS[now.weekday()]
    if words & {"time", "clock"}:
        return format_time(now)
    if "today" in words:
        return format_date(now.date())
    raise ToolError(f"unknown clock query {query.strip()!r}; try 'time', 'date', 'weekday', "
                    "'in 20 minutes' or 'days until 2026-12-25'")


def _days_until(today: datetime.date, year: int, month: int, day: int) -> str:
    try:
        target = datetime.date(year, month, day)
    except ValueError as error:
        raise ToolError(f"not a date: {year:04d}-{month:02d}-{day:02d} ({error})") from None
    days = (target - today).days
    if days == 0:
        return "0 days (it is today)"
    if days < 0:
        return f"{target.isoformat()} was {-days} day{'s' if days != -1 else ''} ago"
    return f"{days} day{'s' if days != 1 else ''}"
