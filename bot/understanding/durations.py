"""Wall times in every form people and Slurm write them, read as whole minutes.

Slurm forms ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
"days-hours:minutes", "days-hours:minutes:seconds", sbatch(1) --time) are read with Slurm's own
meaning, so "45:00" is 45 minutes, not 45 hours: a person who pastes a Slurm time gets what Slurm
would give them. Two forms are ambiguous outside a label and are read only after one ("time",
"walltime", "--time", "time limit"…): a bare number ("walltime 90" is 90 minutes, "90" alone is not
a time) and "days-hours" ("2-12" alone could be a range). Human forms ("4h", "1.5 hours", "ninety
minutes", "an hour and a half", "half a day", "1h30m", "2 hours and 30 minutes") are found anywhere.
Words with no fixed length ("overnight", "a while", "the weekend") are not read as a length: the
grammar asks how long instead (doubts.py), and an end given as a clock time ("until 6pm") is
counted from now by deadlines.py.

`stated_time_limits` says which of the lengths found are the job's own, for a caller that must
not take any length written anywhere (the language model's grounding): a length whose words make
it something else — a deadline ("results due in 30 hours"), a time past ("3 hours ago", "ran 5
hours yesterday"), a wait ("waited 2 hours"), a repetition ("every 2 hours") — is not; of the rest,
the first (the one `read_details` takes) and any written after a time label ("walltime 4h").

Seconds round up to the next minute, as Slurm rounds a time limit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from bot.understanding.lazy_re import lazy
from bot.understanding.numbers import WORD_NUMBER, read_number

_MINUTES_PER = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1, "s": 1 / 60}

# Unit spellings by their first letter's meaning; long forms may follow word numbers.
_LONG_UNITS = r"(?:weeks?|wks?|days?|hours?|hrs?|minutes?|mins?|seconds?|secs?)"
_SHORT_UNITS = r"(?:w|d|h|m|s)"
_BEFORE = r"(?<![\w.:/\-])"
_AFTER = r"(?![\w])"
_HALF = r"(?:\s+and\s+a\s+half)"

_PART = (
    r"(?:"
    rf"(?P<three_quarters>three[\s-]+quarters?\s+of\s+an?\s+hour)"
    rf"|(?P<quarter>(?:an?\s+)?quarter(?:\s+of)?(?:\s+an?)?[\s-]+hour)"
    rf"|(?P<half>(?:an?\s+)?half(?:\s+of)?(?:\s+an?)?[\s-]+(?P<half_unit>hour|day|week|minute))"
    rf"|(?P<digits>\d+(?:\.\d+)?)(?P<digits_half>{_HALF})?[\s-]*(?P<digits_unit>{_LONG_UNITS}|{_SHORT_UNITS})"
    rf"|(?P<words>{WORD_NUMBER})(?P<words_half>{_HALF})?[\s-]+(?P<words_unit>{_LONG_UNITS})"
    rf"){_AFTER}(?P<trailing_half>{_HALF})?"
)
_PART_RE = lazy(_PART, re.IGNORECASE)
# Parts in a row make one duration: "1h30m", "2 hours and 30 minutes", "1 day, 12 hours".
_HUMAN_RE = lazy(
    rf"{_BEFORE}{_PART}(?:\s*,?\s*(?:and\s+)?{_PART.replace('?P<', '?P<next_')})*", re.IGNORECASE
)

# Units run together with no space: "1h30m", "2d12h", "1d6h30m", "4h30" (each part is found by the
# reader above only when a non-letter follows it, so that "4 h100" is never four hours).
_COMPACT_RE = lazy(
    r"(?<![\w.:/\-])(?=\d+[dh]\d)(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?:ins?)?|(?P<mm>[0-5]\d))?(?![\w])",
    re.IGNORECASE,
)
_SLURM_TIME = r"(?:\d+-\d{1,2}(?::\d{1,2}){0,2}|\d+(?::\d{1,2}){0,2})"
# The Slurm forms that are unambiguous without a label: with a colon, or days-hours:minutes.
_SLURM_FREE_RE = lazy(
    rf"{_BEFORE}(?P<token>\d+-\d{{1,2}}:\d{{1,2}}(?::\d{{1,2}})?|\d+:\d{{2}}(?::\d{{2}})?)"
    r"(?![\w.:/\-])(?P<hours>\s*(?:h|hrs?|hours?)\b)?",
    re.IGNORECASE,
)
_LABEL = (
    r"(?:--time|-t|wall[\s-]?(?:clock[\s-]?)?time(?:[\s-]?limit)?|time[\s-]?limit|max(?:imum)?[\s-]+time"
    r"|run[\s-]?time|duration|time)"
)
_LABELLED_RE = lazy(
    rf"(?<![\w-]){_LABEL}\s*(?:of\s+|is\s+|=\s*|:\s*)?(?P<token>{_SLURM_TIME})(?![\w.:/\-])"
    # a bare number followed by a unit is a human form ("time 4 hours"), read by the human reader.
    r"(?!\s*(?:[a-z]+\s+)?(?:w|wks?|weeks?|d|days?|h|hrs?|hours?|m|mins?|minutes?|s|secs?|seconds?)\b)",
    re.IGNORECASE,
)
# "at 3:00" or "by 10:30" is a clock time, not a length.
_CLOCK_BEFORE_RE = lazy(r"(?:\b(?:at|by|until|till|from|since)\s*)$", re.IGNORECASE)
_CLOCK_AFTER_RE = lazy(r"^\s*(?:am|pm|a\.m\.|p\.m\.|utc|gmt|cet|est|pst)\b", re.IGNORECASE)
# Words that make a length something other than the job's own: up to two words may stand between
# the cue and the length ("due in 30 hours", "deadline is in 2 days"), none after it ("3 hours ago").
_NOT_THE_JOBS_BEFORE_RE = lazy(
    r"\b(?:due|deadline|eta|expires?|expiring|expiry|every|since|waited|waiting|been|took|ran|lasted"
    r"|yesterday|start(?:s|ing)?\s+in|begin(?:s|ning)?\s+in)\b[\s:,]*(?:[\w'-]+[\s:,]+){0,2}$",
    re.IGNORECASE,
)
_NOT_THE_JOBS_AFTER_RE = lazy(
    r"^[\s,]*(?:ago|from\s+now|later|earlier|yesterday|overdue|late|old|since)\b", re.IGNORECASE
)
_TIME_LABEL_BEFORE_RE = lazy(rf"(?<![\w-]){_LABEL}\s*(?:of\s+|is\s+|=\s*|:\s*)?$", re.IGNORECASE)
_CONTEXT_CHARS = 40


@dataclass(frozen=True)
class DurationMatch:
    """A wall time found in text: its length and where it was written."""

    minutes: int
    start: int
    end: int


def _whole_minutes(minutes: float) -> int:
    return math.ceil(minutes - 1e-9)


def parse_slurm_time(token: str) -> int | None:
    """Minutes for a Slurm --time value ("90", "45:00", "02:30:00", "1-00:00:00", "2-12"), else None."""
    days = 0
    rest = token.strip()
    if "-" in rest:
        day_text, _, rest = rest.partition("-")
        if not day_text.isdigit():
            return None
        days = int(day_text)
        fields = rest.split(":")
        if len(fields) > 3 or not all(f.isdigit() for f in fields):
            return None
        hours, minutes, seconds = ([int(f) for f in fields] + [0, 0])[:3]
    else:
        fields = rest.split(":")
        if len(fields) > 3 or not all(f.isdigit() for f in fields):
            return None
        values = [int(f) for f in fields]
        # Slurm: "M", "M:S", "H:M:S".
        hours, minutes, seconds = {1: (0, values[0], 0), 2: (0, *values), 3: tuple(values)}[len(values)]
    return _whole_minutes(days * 1440 + hours * 60 + minutes + seconds / 60)


def _part_minutes(match: re.Match[str], prefix: str = "") -> float | None:
    def group(name: str) -> str | None:
        return match.group(prefix + name)

    if group("three_quarters"):
        return 45.0
    if group("quarter"):
        return 15.0
    if group("half"):
        return 0.5 * _MINUTES_PER[(group("half_unit") or "h")[0].lower()]
    if group("digits"):
        amount, unit, half = group("digits"), group("digits_unit"), group("digits_half")
    else:
        amount, unit, half = group("words"), group("words_unit"), group("words_half")
    if amount is None or unit is None:
        return None
    value = read_number(amount)
    if value is None:
        return None
    if half or group("trailing_half"):
        value += 0.5
    return value * _MINUTES_PER[unit[0].lower()]


def _human_minutes(text: str) -> float | None:
    total = 0.0
    for part in _PART_RE.finditer(text):
        minutes = _part_minutes(part)
        if minutes is None:
            return None
        total += minutes
    return total


def _is_clock_time(text: str, start: int, end: int) -> bool:
    return bool(_CLOCK_BEFORE_RE.search(text[max(0, start - 8) : start])) or bool(
        _CLOCK_AFTER_RE.match(text[end : end + 6])
    )


def find_durations(text: str) -> list[DurationMatch]:
    """Every wall time in `text`, in order; labelled Slurm forms first, as they are the most explicit."""
    found: list[DurationMatch] = []
    taken: list[tuple[int, int]] = []

    def overlaps(start: int, end: int) -> bool:
        return any(start < t_end and t_start < end for t_start, t_end in taken)

    for match in _LABELLED_RE.finditer(text):
        minutes = parse_slurm_time(match.group("token"))
        if minutes is not None:
            found.append(DurationMatch(minutes, match.start(), match.end()))
            taken.append(match.span())
    for match in _SLURM_FREE_RE.finditer(text):
        start, end = match.span()
        if overlaps(start, end) or _is_clock_time(text, start, match.end("token")):
            continue
        token = match.group("token")
        value: int | None
        if match.group("hours") and "-" not in token and token.count(":") == 1:
            # "1:30 hours" is hours:minutes, whatever Slurm would say.
            hours_text, minutes_text = token.split(":")
            value = int(hours_text) * 60 + int(minutes_text)
        else:
            value = parse_slurm_time(token)
        if value is not None:
            found.append(DurationMatch(value, start, end))
            taken.append((start, end))
    for match in _COMPACT_RE.finditer(text):
        if match.group(0) and not overlaps(*match.span()):
            days, hours, minutes = (int(match.group(g) or 0) for g in ("d", "h", "m"))
            minutes += int(match.group("mm") or 0)  # "4h30": minutes after the hours, unit unsaid
            found.append(DurationMatch(days * 1440 + hours * 60 + minutes, *match.span()))
            taken.append(match.span())
    for match in _HUMAN_RE.finditer(text):
        start, end = match.span()
        if overlaps(start, end):
            continue
        total = _human_minutes(match.group(0))
        if total is not None:
            found.append(DurationMatch(_whole_minutes(total), start, end))
            taken.append((start, end))
    found.sort(key=lambda d: d.start)
    return found


def is_the_jobs(text: str, found: DurationMatch) -> bool:
    """Whether a length found in `text` can be the job's own (not a deadline, a time past, a wait)."""
    before = text[max(0, found.start - _CONTEXT_CHARS) : found.start]
    after = text[found.end : found.end + _CONTEXT_CHARS]
    return not (_NOT_THE_JOBS_BEFORE_RE.search(before) or _NOT_THE_JOBS_AFTER_RE.match(after))


def _labelled(text: str, found: DurationMatch) -> bool:
    return _TIME_LABEL_BEFORE_RE.search(text[max(0, found.start - _CONTEXT_CHARS) : found.start]) is not None


@dataclass(frozen=True)
class TimeLimits:
    """The lengths a text states, sorted by whether they can be the job's wall time."""

    stated: frozenset[int]  # the first of the job's own lengths, and any after a time label
    the_jobs: frozenset[int]  # every length that can be the job's own
    not_the_jobs: frozenset[int]  # deadlines, times past, waits, repetitions


def stated_time_limits(text: str) -> TimeLimits:
    """The wall times `text` states for the job itself (see the module's docstring)."""
    the_jobs: list[DurationMatch] = []
    not_the_jobs: set[int] = set()
    for found in find_durations(text):
        if is_the_jobs(text, found):
            the_jobs.append(found)
        else:
            not_the_jobs.add(found.minutes)
    stated = {found.minutes for index, found in enumerate(the_jobs) if index == 0 or _labelled(text, found)}
    return TimeLimits(frozenset(stated), frozenset(f.minutes for f in the_jobs), frozenset(not_the_jobs))


def parse_duration(text: str) -> int | None:
    """Minutes for text that is one wall time and nothing else ("4h", "2-12:00:00", "an hour"), else None."""
    stripped = text.strip()
    for match in find_durations(stripped):
        if match.start == 0 and match.end == len(stripped):
            return match.minutes
    return None
