"""What the schedule runs and when: typed settings, checked when they are loaded.

Why crontab strings are translated before APScheduler sees them: APScheduler 3.x's
`CronTrigger.from_crontab` numbers weekdays from Monday = 0 (its docs call this a historical
mistake kept for compatibility), while crontab(5) numbers them from Sunday = 0 (7 is Sunday too).
"0 9 * * 1" would fire on Tuesdays. So the day-of-week field is rewritten as weekday names, which
both agree on, and an admin's crontab line means what crontab(5) says it means. (One difference
stays: with both day-of-month and weekday restricted, crontab fires on either, APScheduler on both.)

A digest's `since` is its window ("24h", "7d", "90m"): the period it covers ends at the time the
digest was due, so a digest posted late still covers the period it was scheduled for.
"""

from __future__ import annotations

import re
from datetime import timedelta, tzinfo
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_WINDOW = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_WINDOW_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab(5): 0 (and 7) is Sunday
_WEEKDAY_PART = re.compile(r"^(?:(\*)|(\d)(?:-(\d))?)(?:/(\d+))?$")


def window(text: str) -> timedelta:
    """ "24h" → 24 hours; minutes, hours, days and weeks."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a window: write a number and a unit, e.g. 90m, 24h, 7d or 2w")
    amount, unit = int(match.group(1)), _WINDOW_UNITS[match.group(2).lower()]
    if amount <= 0:
        raise ValueError(f"the window {text!r} must be longer than nothing")
    return timedelta(**{unit: amount})


def crontab_trigger(expression: str, timezone: tzinfo) -> Any:
    """An APScheduler CronTrigger that fires when crontab(5) would (see the module docstring)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"{expression!r} is not a crontab line: it needs 5 fields (minute hour day month weekday), "
            "e.g. '0 9 * * 1' for Mondays at 09:00"
        )
    fields[4] = _crontab_weekdays(fields[4])
    return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)


def _crontab_weekdays(field: str) -> str:
    """The weekday field with crontab's numbers written as names ('1-5' → 'mon,tue,wed,thu,fri')."""
    if field == "*":
        return field
    parts: list[str] = []
    for part in field.lower().split(","):
        match = _WEEKDAY_PART.match(part)
        if match is None:  # names ('mon-fri') mean the same to both
            parts.append(part)
            continue
        star, first, last, step = match.groups()
        low, high = (0, 6) if star else (int(first), int(last if last is not None else first))
        if step is not None and last is None and not star:
            high = 6  # crontab: 'N/S' means N-max/S
        if not (0 <= low <= 7 and 0 <= high <= 7) or low > high:
            raise ValueError(f"{part!r} is not a weekday range of crontab(5) (0-7, Sunday is 0 or 7)")
        days = range(low, high + 1, int(step or 1))
        parts.extend(_WEEKDAYS[day % 7] for day in days)
    return ",".join(dict.fromkeys(parts))


class DigestSchedule(BaseModel):
    """One digest posted to a channel on a crontab schedule, covering the `since` window before it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[Literal["digest", "weekly"]] = "digest"

    channel: str = Field(min_length=1)  # a channel id (C…), where the bot is a member
    cron: str = "0 9 * * *"  # crontab(5), in the schedule's timezone
    since: str = "24h"
    chart: bool = True
    # A stable name for this digest; the default is made of channel, cron and window, so editing
    # any of them starts a new series of periods.
    name: str | None = Field(default=None, max_length=120)

    @field_validator("cron")
    @classmethod
    def _cron_is_crontab(cls, value: str) -> str:
        crontab_trigger(value, ZoneInfo("UTC"))
        return " ".join(value.split())

    @field_validator("since")
    @classmethod
    def _since_is_a_window(cls, value: str) -> str:
        window(value)
        return value.strip()

    @property
    def window(self) -> timedelta:
        return window(self.since)

    @property
    def key(self) -> str:
        return self.name or f"{self.kind}:{self.channel}:{self.cron}:{self.since}"


class WeeklySummary(DigestSchedule):
    """The week in one message: Mondays at 09:00 by default."""

    kind: ClassVar[Literal["digest", "weekly"]] = "weekly"

    cron: str = "0 9 * * 1"
    since: str = "7d"


class ScheduleSettings(BaseModel):
    """The scheduled work of `concierge serve`: digests, the weekly summary, sampling and nudges.

    Only one replica (the lease holder) runs it; the others wait to take over."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    timezone: str = "UTC"  # an IANA name; crontab lines are read in it
    digests: tuple[DigestSchedule, ...] = ()
    weekly: WeeklySummary | None = None
    # Cluster-wide scraping (dcgm-exporter/Prometheus) every N s; None: not scheduled here.
    sample_interval_s: float | None = Field(default=30.0, gt=0)
    # How often idle allocations are looked for and their owners nudged; None: never.
    nudge_interval_s: float | None = Field(default=600.0, gt=0)
    # How often aged GPU roll-ups and conversations nobody spoke in are deleted; None: never.
    housekeeping_interval_s: float | None = Field(default=3600.0, gt=0)
    # A run missed by more than this (the bot was down) is skipped; within it, it still runs.
    misfire_grace_time_s: int = Field(default=3600, ge=1)
    coalesce: bool = True  # several missed runs of one job run once
    max_instances: int = Field(default=1, ge=1)
    lease_ttl_s: float = Field(default=60.0, gt=0)  # a silent leader is replaced after this
    lease_renew_s: float = Field(default=20.0, gt=0)  # how often the lease is renewed or tried

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"{value!r} is not an IANA time zone name, e.g. UTC or Europe/Berlin") from e
        return value

    @model_validator(mode="after")
    def _renewed_before_expiry(self) -> ScheduleSettings:
        if self.lease_renew_s >= self.lease_ttl_s:
            raise ValueError(
                f"lease_renew_s ({self.lease_renew_s}) must be shorter than lease_ttl_s "
                f"({self.lease_ttl_s}), or the leader loses its lease between renewals"
            )
        keys = [digest.key for digest in self.all_digests]
        if len(keys) != len(set(keys)):
            raise ValueError("two digests have the same name (or channel, cron and since): give each a name")
        return self

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    @property
    def all_digests(self) -> tuple[DigestSchedule, ...]:
        return self.digests + ((self.weekly,) if self.weekly is not None else ())
