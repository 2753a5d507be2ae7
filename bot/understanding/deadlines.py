"""Wall times given as the moment the job should end: "until 6pm", "by 18:30 tomorrow", "till noon".

A clock time is turned into the minutes from now to that moment, so "until 6pm" asked at 15:30 is
150 minutes: the clock is passed in (`now`, aware), never read here, so a test states its own time.
The time zone is `now`'s own: the person's words carry none. With no day named, a clock time
already past today means tomorrow ("until 9am" said at 22:00); one past on a day named ("until
9am today" at 10:00) is a mistake to point out, not a day to guess.

A moment without a clock time ("until tomorrow morning", "by end of day", "till Friday") is not
guessed: when a morning ends is a matter of habit, so the person is asked for a length or a clock
time instead. "up to 4 hours" is a length, read by durations.py, not a moment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.understanding.lazy_re import lazy

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = (
    r"(?P<{name}>today|tonight|tomorrow|tmrw|tmr|(?:this\s+|next\s+)?(?:mon|tues|wednes|thurs|fri|satur|sun)day"
    r"|(?:the\s+)?weekend)"
)
_PART_OF_DAY = (
    r"(?:(?:in\s+)?the\s+)?(?:morning|afternoon|evening|night|lunch(?:time)?|end\s+of\s+(?:the\s+)?"
    r"(?:day|week|month)|eod|eow|cob|close\s+of\s+business|start\s+of\s+(?:the\s+)?(?:day|week))"
)
_CLOCK = (
    r"(?:(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)(?![\w])"
    r"|(?P<hour24>\d{1,2}):(?P<minute24>\d{2})(?![\d:])(?:\s*h(?:rs)?\b)?"
    r"|(?P<noon>noon|midday)|(?P<midnight>midnight))"
)
_UNTIL = r"(?:until|till|til|'til|untill|by|before|through|thru|no\s+later\s+than|ending\s+at|end\s+at)"
_DEADLINE_RE = lazy(
    rf"\b{_UNTIL}\s+(?:the\s+)?(?:"
    rf"(?:{_DAY.format(name='day')}\s+(?:at\s+|by\s+)?)?{_CLOCK}(?:\s+(?:on\s+)?{_DAY.format(name='day_after')})?"
    rf"|(?P<vague>(?:{_DAY.format(name='vague_day')}(?:\s+{_PART_OF_DAY})?|{_PART_OF_DAY}(?:\s+{_DAY.format(name='vague_after')})?)))"
    r"(?![\w])",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Deadline:
    """A moment the job should end, as written; `minutes` from now, or None with `problem` said."""

    phrase: str
    start: int
    end: int
    minutes: int | None
    problem: str | None = None
    moment: datetime | None = None


def _day_offset(day: str | None, now: datetime) -> int | None:
    if day is None:
        return None
    day = " ".join(day.lower().split()).removeprefix("this ").removeprefix("next ")
    if day in ("today", "tonight"):
        return 0
    if day in ("tomorrow", "tmrw", "tmr"):
        return 1
    if day in _WEEKDAYS:
        return (_WEEKDAYS.index(day) - now.weekday()) % 7
    return None  # "the weekend": no one moment


def _clock(found: re.Match[str]) -> tuple[int, int] | None:
    if found.group("noon"):
        return 12, 0
    if found.group("midnight"):
        return 24, 0
    if found.group("hour24"):
        hour, minute = int(found.group("hour24")), int(found.group("minute24"))
        return (hour, minute) if hour <= 24 and minute < 60 else None
    hour, minute = int(found.group("hour")), int(found.group("minute") or 0)
    if not 1 <= hour <= 12 or minute >= 60:
        return None
    return hour % 12 + (12 if found.group("ampm").lower().startswith("p") else 0), minute


def _ask(found: re.Match[str], why: str) -> Deadline:
    return Deadline(found.group(0), found.start(), found.end(), None, why)


def find_deadline(text: str, now: datetime) -> Deadline | None:
    """The first moment `text` names for the job to end, with the minutes from `now` to it."""
    found = _DEADLINE_RE.search(text)
    if found is None:
        return None
    if found.group("vague"):
        return _ask(found, "names no clock time")
    clock = _clock(found)
    if clock is None:
        return _ask(found, "is not a time of day")
    day = found.group("day") or found.group("day_after")
    offset = _day_offset(day, now)
    if day is not None and offset is None:
        return _ask(found, "names no one day")
    hour, minute = clock
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    moment = midnight + timedelta(days=offset or 0, hours=hour, minutes=minute)
    if moment <= now:
        if day is not None and day.lower() in ("today", "tonight"):
            return _ask(found, f"has passed already (it is {now:%H:%M} now)")
        moment += timedelta(days=1 if day is None else 7)  # the weekday named comes again next week
    minutes = math.ceil((moment - now).total_seconds() / 60)
    return Deadline(found.group(0), found.start(), found.end(), minutes, moment=moment)
