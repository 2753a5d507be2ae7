"""Slurm's spellings of durations and instants, to and from our minutes and UTC datetimes.

Slurm prints wall times as `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS` and
`UNLIMITED`/`infinite` for no limit; we always write `D-HH:MM:SS` (or `HH:MM:SS` under a day)
because every version since 2.x reads it and a person can read it too (`clock`, the spelling the
terminal's tables share). Instants in text output are
local time of the command; the runner runs every command with TZ=UTC, so we read them as UTC.
JSON instants are epoch seconds, where 0 means "not set".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from backends.durations_text import clock

_NO_LIMIT = frozenset({"unlimited", "infinite", "n/a", "none", "", "(null)"})
_DURATION = re.compile(r"^(?:(?P<days>\d+)-)?(?P<rest>\d+(?::\d+){0,2})$")
_NOT_AN_INSTANT = frozenset({"n/a", "unknown", "none", "", "(null)"})


def format_time_limit(minutes: int) -> str:
    """`--time` value: 90 → `01:30:00`, 1440 → `1-00:00:00`."""
    if minutes < 1:
        raise ValueError(f"a time limit must be at least one minute, not {minutes}")
    return clock(minutes * 60)


def parse_slurm_duration(text: str) -> int | None:
    """Minutes in a Slurm duration (seconds rounded up); None for no limit or unreadable text."""
    cleaned = text.strip().lower()
    if cleaned in _NO_LIMIT:
        return None
    match = _DURATION.match(cleaned)
    if not match:
        return None
    days = int(match["days"] or 0)
    parts = [int(p) for p in match["rest"].split(":")]
    if match["days"] is not None:
        # After "D-" the fields are hours[:minutes[:seconds]].
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    total_seconds = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    return -(-total_seconds // 60)


def parse_slurm_instant(text: str) -> datetime | None:
    """`2026-11-23T22:20:11` (printed under TZ=UTC) → aware UTC datetime; None for N/A/Unknown."""
    cleaned = text.strip()
    if cleaned.lower() in _NOT_AN_INSTANT:
        return None
    try:
        return datetime.strptime(cleaned, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def from_epoch(seconds: int | None) -> datetime | None:
    """JSON timestamps: 0 (or absent) means not set."""
    if not seconds or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def describe_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
