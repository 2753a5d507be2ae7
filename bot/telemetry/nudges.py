"""Idle-GPU nudges: whom to tell that their job holds GPUs it does not use, and when to stop telling.

The engine's half, with no Slack in it: from the digest's idle allocations it picks the jobs idle
for longer than `idle_minutes` and still holding their GPUs, claims each nudge in the database,
and hands it to a delivery (bot/slack/nudges.py DMs the owner with Keep / Cancel job buttons).

Why it works this way:
- The cooldown lives in the database (bot/store/schedule.py), per job, so a restart or a second
  replica does not nudge again; a claim is a compare-and-set, so two rounds racing nudge once.
- A nudge counts only once delivered: a failed delivery hands its claim back, and the next round
  tries again. An owner nobody can reach is not counted either, and shows in the admins' list.
- Keep is the owner saying "I know": no nudge about that job until `kept_until`.
- The admins' list (for the digest) names every idle job past the threshold with what was done
  about it, so an admin sees who was told, who kept their GPUs, and who could not be reached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from backends.errors import ConciergeError
from bot.settings import NudgeSettings
from bot.store.schedule import NudgeRecord, ScheduleStore
from bot.store.store import utc_now

log = logging.getLogger("concierge.nudges")
Clock = Callable[[], datetime]


class IdleAllocation(Protocol):
    """An idle job as the digest reports it (bot.telemetry.digest.IdleJob has these fields)."""

    @property
    def backend(self) -> str: ...
    @property
    def job_id(self) -> str: ...
    @property
    def owner(self) -> str: ...  # the cluster user the job runs as
    @property
    def gpus(self) -> int: ...
    @property
    def mean_utilization_pct(self) -> float: ...
    @property
    def since(self) -> datetime: ...  # first seen holding its GPUs in the period looked at
    @property
    def last_seen(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Nudge:
    """What the owner is told: which job, how big, how idle, for how long; Keep lasts `keep_for`."""

    backend: str
    job_id: str
    owner: str
    gpus: int
    mean_utilization_pct: float
    idle_for: timedelta
    keep_for: timedelta


class NudgeUndeliverable(ConciergeError):
    """The job's owner cannot be reached (no chat account is mapped to their cluster user)."""


class NudgeDelivery(Protocol):
    def deliver(self, nudge: Nudge) -> None:
        """Tell the owner; raise when they were not told (NudgeUndeliverable when they cannot be)."""


class NoDelivery:
    """For a nudger that only reads the nudges' state (`admin_list`), as the CLI digest does:
    nobody is told from there, `concierge serve` tells them."""

    def deliver(self, nudge: Nudge) -> None:
        raise NudgeUndeliverable(f"job {nudge.job_id}'s owner is told by `concierge serve`, not from here")


class NudgeStatus(StrEnum):
    NUDGED = "nudged"  # told in this round
    COOLING_DOWN = "cooling_down"  # told less than the cooldown ago
    KEPT = "kept"  # the owner clicked Keep
    UNREACHABLE = "unreachable"  # nobody to tell
    FAILED = "failed"  # telling failed; tried again next round
    NOT_YET = "not_yet"  # due, and the next round tells the owner


@dataclass(frozen=True, slots=True)
class IdleNote:
    """One line of the admins' list."""

    backend: str
    job_id: str
    owner: str
    gpus: int
    mean_utilization_pct: float
    idle_for: timedelta
    status: NudgeStatus
    last_nudged_at: datetime | None
    kept_until: datetime | None
    nudges: int


@dataclass(frozen=True, slots=True)
class NudgeRound:
    nudged: tuple[Nudge, ...]
    for_admins: tuple[IdleNote, ...]  # every idle job past the threshold, longest idle first


class Nudger:
    def __init__(
        self,
        store: ScheduleStore,
        settings: NudgeSettings,
        delivery: NudgeDelivery,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._settings = settings
        self._delivery = delivery
        self._clock = clock

    def due(self, idle: Sequence[IdleAllocation], now: datetime) -> list[IdleAllocation]:
        """Jobs idle past the threshold and still holding their GPUs, longest idle first."""
        settings = self._settings
        found = [
            job
            for job in idle
            if job.last_seen - job.since >= settings.idle_for and now - job.last_seen <= settings.seen_within
        ]
        return sorted(found, key=lambda job: (job.since, job.backend, job.job_id))

    def run(self, idle: Sequence[IdleAllocation]) -> NudgeRound:
        """Nudge the owners whose cooldown and Keep are over; say what happened to every idle job."""
        now = self._clock()
        due = self.due(idle, now) if self._settings.enabled else []
        statuses: dict[tuple[str, str], NudgeStatus] = {}
        nudged: list[Nudge] = []
        for job in due:
            nudge = self._nudge_for(job)
            status = self._nudge(nudge, now)
            statuses[(job.backend, job.job_id)] = status
            if status == NudgeStatus.NUDGED:
                nudged.append(nudge)
        return NudgeRound(tuple(nudged), self._notes(due, statuses, now))

    def admin_list(self, idle: Sequence[IdleAllocation]) -> tuple[IdleNote, ...]:
        """The admins' list without nudging anyone (for a digest posted between rounds)."""
        now = self._clock()
        return self._notes(self.due(idle, now), {}, now)

    def _nudge(self, nudge: Nudge, now: datetime) -> NudgeStatus:
        claim = self._store.claim_nudge(
            nudge.backend, nudge.job_id, nudge.owner, now, self._settings.cooldown
        )
        if claim is None:
            return self._quiet_status(self._store.nudge_record(nudge.backend, nudge.job_id), now)
        try:
            self._delivery.deliver(nudge)
        except NudgeUndeliverable as e:
            self._store.release_nudge(claim)
            log.info("nudge about job %s not sent: %s", nudge.job_id, e.message)
            return NudgeStatus.UNREACHABLE
        except Exception:
            self._store.release_nudge(claim)
            log.exception("nudge about job %s failed; trying again next round", nudge.job_id)
            return NudgeStatus.FAILED
        return NudgeStatus.NUDGED

    def _nudge_for(self, job: IdleAllocation) -> Nudge:
        return Nudge(
            backend=job.backend,
            job_id=job.job_id,
            owner=job.owner,
            gpus=job.gpus,
            mean_utilization_pct=job.mean_utilization_pct,
            idle_for=job.last_seen - job.since,
            keep_for=self._settings.cooldown,
        )

    def _notes(
        self,
        due: Sequence[IdleAllocation],
        statuses: dict[tuple[str, str], NudgeStatus],
        now: datetime,
    ) -> tuple[IdleNote, ...]:
        records = self._store.nudge_records((job.backend, job.job_id) for job in due)
        notes = []
        for job in due:
            key = (job.backend, job.job_id)
            record = records.get(key)
            notes.append(
                IdleNote(
                    backend=job.backend,
                    job_id=job.job_id,
                    owner=job.owner,
                    gpus=job.gpus,
                    mean_utilization_pct=job.mean_utilization_pct,
                    idle_for=job.last_seen - job.since,
                    status=statuses.get(key) or self._quiet_status(record, now),
                    last_nudged_at=record.last_nudged_at if record else None,
                    kept_until=record.kept_until if record else None,
                    nudges=record.nudges if record else 0,
                )
            )
        return tuple(notes)

    def _quiet_status(self, record: NudgeRecord | None, now: datetime) -> NudgeStatus:
        """Why nobody is told about this job now: Keep, the cooldown, or not yet."""
        if record is None:
            return NudgeStatus.NOT_YET
        if record.kept_until is not None and record.kept_until > now:
            return NudgeStatus.KEPT
        if record.last_nudged_at is not None and record.last_nudged_at + self._settings.cooldown > now:
            return NudgeStatus.COOLING_DOWN
        return NudgeStatus.NOT_YET


def nudge_overview(
    store: ScheduleStore, settings: NudgeSettings, clock: Clock = utc_now
) -> Callable[[Sequence[IdleAllocation]], tuple[IdleNote, ...]]:
    """What was done about each idle job, read from the store without telling anyone."""
    return Nudger(store, settings, NoDelivery(), clock).admin_list
