"""The schedule: digests, the weekly summary, sampling and nudges, run by one replica at a time.

Why it is built this way:
- APScheduler 3.x keeps the jobs in our database (`SQLAlchemyJobStore`, its own table
  `apscheduler_jobs`, created by the job store and never by our migrations), so a due digest is
  remembered across a restart: a run missed while the bot was down still happens when it comes
  back, if within `misfire_grace_time_s`, and several missed runs of one job run once (coalesce).
- Jobs are stored by textual reference (`bot.telemetry.schedule:run_digest`) with plain-dict
  arguments, so nothing but names and numbers is pickled and a new release can load them. The
  collaborators a run needs (Slack client, store) cannot be pickled, so the leader registers them
  in this process (`_RUNNERS`) before its scheduler starts, and a run looks them up.
- Jobs have stable ids and are written with `replace_existing=True` at every start, so a restart
  never duplicates one. A job whose definition is unchanged keeps its stored next run time (a
  plain `replace_existing` would move it to the future and silently drop a missed digest);
  a changed one starts afresh; one no longer configured is removed.
- APScheduler 3.x does not support several schedulers on one job store: each would run every due
  job. So only the holder of the `schedule` lease (bot/store/schedule.py) starts a scheduler;
  the others renew nothing and try to take over each `lease_renew_s`, succeeding once the
  leader's lease has expired (`lease_ttl_s`) or was released at its shutdown.
- A lease cannot rule out a paused leader waking after its lease expired. So each digest
  period is also claimed in the database (key + period start, a primary key) before it is
  posted: two replicas, or a replica and its restarted self, post it once.
- A run does not know the time it was scheduled for (APScheduler calls the function with its
  stored arguments only), so a digest's period ends at the latest time its crontab fired, looked
  for within the misfire grace: the same answer on every replica, and a coalesced run of several
  missed periods posts the latest one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import uuid4

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.store.database import create_store_engine, supported_url
from bot.store.schedule import ScheduleStore
from bot.store.store import utc_now
from bot.telemetry.schedule_settings import DigestSchedule, ScheduleSettings, WeeklySummary, crontab_trigger

log = logging.getLogger("concierge.schedule")
LEASE = "schedule"
JOBS_TABLE = "apscheduler_jobs"
_MODULE = __name__
_FIRE_LOOKBACK_MARGIN = timedelta(minutes=1)  # beyond the misfire grace: a run starts a little late
_MAX_FIRE_STEPS = 100_000
Clock = Callable[[], datetime]
DigestKind = Literal["digest", "weekly"]


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One digest to post: where, and the period it covers (`period_end` is when it was due)."""

    key: str
    kind: DigestKind
    channel: str
    chart: bool
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class ScheduledWork:
    """What the schedule calls; the wiring (`concierge serve`) builds these from the real parts."""

    post_digest: Callable[[DigestRun], None]
    sample: Callable[[], None] | None = None
    nudge: Callable[[], None] | None = None
    housekeeping: Callable[[], None] | None = None


@dataclass(frozen=True)
class _JobSpec:
    id: str
    func: str
    trigger: Any
    kwargs: dict[str, Any]


class Schedule:
    """The schedule of one replica: `start()` it, and it leads when it holds the lease."""

    def __init__(
        self,
        database_url: str,
        settings: ScheduleSettings,
        work: ScheduledWork,
        *,
        holder: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid4().hex[:8]}"
        # Our own engine: APScheduler's job store disposes the engine it was given at shutdown.
        self._engine = create_store_engine(supported_url(database_url))
        self._store = ScheduleStore(self._engine)
        self._runner = _Runner(self._store, work, settings, self.holder, clock)
        self._scheduler: Any = None
        self._held_until = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        """Try to lead now, then keep renewing (or trying) in a background thread."""
        if not self._settings.enabled:
            log.info("the schedule is disabled: no digests, sampling or nudges from this replica")
            return
        self.step()
        self._thread = threading.Thread(target=self._keep_leading, name="schedule-lease", daemon=True)
        self._thread.start()

    def step(self) -> bool:
        """One look at the lease: start the scheduler on taking it, stop it on losing it."""
        with self._lock:
            if self._stop.is_set():
                return False
            leads = self._hold_lease()
            if leads and self._scheduler is None:
                leads = self._lead()
            elif not leads and self._scheduler is not None:
                log.warning(
                    "%s no longer holds the schedule's lease; it stops running the schedule", self.holder
                )
                self._step_down(wait=False)
            return leads

    def _hold_lease(self) -> bool:
        """Renew or take the lease. While the database cannot be asked, a leader goes on until
        the lease it last renewed runs out (nobody else can have taken it before then)."""
        now = self._clock()
        try:
            leads = self._store.hold_lease(
                LEASE, self.holder, now, timedelta(seconds=self._settings.lease_ttl_s)
            )
        except Exception:
            log.exception("the schedule's lease could not be renewed or taken; trying again")
            return self._scheduler is not None and now < self._held_until
        if leads:
            self._held_until = now + timedelta(seconds=self._settings.lease_ttl_s)
        return leads

    def shutdown(self) -> None:
        """Stop leading (running jobs finish first), hand the lease over at once, close the engine."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            with self._lock:
                if self._scheduler is not None:
                    self._step_down(wait=True)
                    self._store.release_lease(LEASE, self.holder, self._clock())
        finally:
            self._engine.dispose()

    def next_runs(self) -> dict[str, datetime | None]:
        """Job id → next run time, as stored; empty unless this replica leads."""
        with self._lock:
            if self._scheduler is None:
                return {}
            return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def _keep_leading(self) -> None:
        while not self._stop.wait(self._settings.lease_renew_s):
            try:
                self.step()
            except Exception:  # the loop must outlive any one failure, or nobody would lead
                log.exception("the schedule's lease loop failed; trying again")

    def _lead(self) -> bool:
        """Start the scheduler with the configured jobs; on failure, let another replica try."""
        settings = self._settings
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={
                "coalesce": settings.coalesce,
                "max_instances": settings.max_instances,
                "misfire_grace_time": settings.misfire_grace_time_s,
            },
            timezone=settings.zone,
        )
        _RUNNERS[LEASE] = self._runner  # before any job can run
        try:
            scheduler.start(paused=True)
            _install(scheduler, _job_specs(settings), settings)
        except Exception:
            log.exception("%s took the schedule's lease but could not start the schedule", self.holder)
            if scheduler.running:
                _stop_quietly(scheduler, wait=False)
            _forget(self._runner)
            with contextlib.suppress(Exception):  # else it expires by itself
                self._store.release_lease(LEASE, self.holder, self._clock())
            return False
        scheduler.resume()  # due jobs (missed while nobody led) run now
        self._scheduler = scheduler
        log.info("%s leads the schedule", self.holder)
        return True

    def _step_down(self, *, wait: bool) -> None:
        scheduler, self._scheduler = self._scheduler, None
        _stop_quietly(scheduler, wait=wait)
        _forget(self._runner)


class _Runner:
    """The leader's side of a run: claims the period, calls the work, records the post."""

    def __init__(
        self, store: ScheduleStore, work: ScheduledWork, settings: ScheduleSettings, holder: str, clock: Clock
    ) -> None:
        self._store = store
        self._work = work
        self._settings = settings
        self._holder = holder
        self._clock = clock

    def post_digest(self, digest: DigestSchedule, kind: DigestKind) -> bool:
        """Post the digest's current period unless it was posted already; True when posted here."""
        now = self._clock()
        lookback = timedelta(seconds=self._settings.misfire_grace_time_s) + _FIRE_LOOKBACK_MARGIN
        trigger = crontab_trigger(digest.cron, self._settings.zone)
        due = latest_fire_time(trigger, now, lookback) or now.replace(microsecond=0)
        end = due.astimezone(UTC)
        run = DigestRun(digest.key, kind, digest.channel, digest.chart, end - digest.window, end)
        if not self._store.claim_run(run.key, run.period_start, run.period_end, self._holder, now):
            log.info("digest %s for %s was posted already; not again", run.key, run.period_end.isoformat())
            return False
        try:
            self._work.post_digest(run)
        except BaseException:
            self._store.release_run(run.key, run.period_start, self._holder)
            raise
        self._store.mark_posted(run.key, run.period_start, self._clock())
        return True

    def sample(self) -> None:
        if self._work.sample is not None:
            self._work.sample()

    def nudge(self) -> None:
        if self._work.nudge is not None:
            self._work.nudge()

    def housekeeping(self) -> None:
        if self._work.housekeeping is not None:
            self._work.housekeeping()


_RUNNERS: dict[str, _Runner] = {}


def _forget(runner: _Runner) -> None:
    if _RUNNERS.get(LEASE) is runner:  # a replica in the same process may lead now
        del _RUNNERS[LEASE]


def _runner() -> _Runner:
    runner = _RUNNERS.get(LEASE)
    if runner is None:
        raise RuntimeError("a scheduled job ran in a process that does not lead the schedule")
    return runner


# --- what the job store refers to by name (keep these names: stored jobs point at them) -------


def run_digest(kind: DigestKind, digest: dict[str, Any]) -> None:
    model = WeeklySummary if kind == "weekly" else DigestSchedule
    _runner().post_digest(model.model_validate(digest), kind)


def run_sample() -> None:
    _runner().sample()


def run_nudges() -> None:
    _runner().nudge()


def run_housekeeping() -> None:
    _runner().housekeeping()


def _stop_quietly(scheduler: Any, *, wait: bool) -> None:
    """Shut a scheduler down without it touching the jobs.

    APScheduler 3.11's scheduler thread looks for due jobs once more after `shutdown()` (its loop
    checks the state only before waiting), when its executors are already shut down: a job due at
    that moment fails to start and its next run time moves on, so the run is lost for everyone.
    With the job store detached first, that last look finds nothing."""
    scheduler.pause()
    scheduler.remove_jobstore("default")
    scheduler.shutdown(wait=wait)


# --- jobs -------------------------------------------------------------------------------------


def _job_specs(settings: ScheduleSettings) -> list[_JobSpec]:
    zone = settings.zone
    specs = [
        _JobSpec(
            id=f"{digest.kind}.{digest.key}",
            func=f"{_MODULE}:run_digest",
            trigger=crontab_trigger(digest.cron, zone),
            kwargs={"kind": digest.kind, "digest": digest.model_dump(mode="json")},
        )
        for digest in settings.all_digests
    ]
    if settings.sample_interval_s is not None:
        trigger = IntervalTrigger(seconds=settings.sample_interval_s, timezone=zone)
        specs.append(_JobSpec("sample", f"{_MODULE}:run_sample", trigger, {}))
    if settings.nudge_interval_s is not None:
        trigger = IntervalTrigger(seconds=settings.nudge_interval_s, timezone=zone)
        specs.append(_JobSpec("nudges", f"{_MODULE}:run_nudges", trigger, {}))
    if settings.housekeeping_interval_s is not None:
        trigger = IntervalTrigger(seconds=settings.housekeeping_interval_s, timezone=zone)
        specs.append(_JobSpec("housekeeping", f"{_MODULE}:run_housekeeping", trigger, {}))
    return specs


def _install(scheduler: Any, specs: list[_JobSpec], settings: ScheduleSettings) -> None:
    """Write the configured jobs, keeping the next run time of those that did not change."""
    stored = {job.id: job for job in scheduler.get_jobs()}
    for spec in specs:
        old = stored.pop(spec.id, None)
        same = old is not None and _unchanged(old, spec, settings)
        kept = {"next_run_time": old.next_run_time} if same else {}
        scheduler.add_job(
            spec.func, trigger=spec.trigger, id=spec.id, name=spec.id, kwargs=spec.kwargs,
            replace_existing=True, **kept,
        )  # fmt: skip
    for leftover in stored.values():
        log.info("removing the scheduled job %s: it is no longer configured", leftover.id)
        scheduler.remove_job(leftover.id)


def _unchanged(job: Any, spec: _JobSpec, settings: ScheduleSettings) -> bool:
    return bool(
        job.func_ref == spec.func
        and tuple(job.args) == ()
        and job.kwargs == spec.kwargs
        and str(job.trigger) == str(spec.trigger)
        and str(job.trigger.timezone) == str(spec.trigger.timezone)
        and job.coalesce == settings.coalesce
        and job.max_instances == settings.max_instances
        and job.misfire_grace_time == settings.misfire_grace_time_s
    )


def latest_fire_time(trigger: Any, now: datetime, lookback: timedelta) -> datetime | None:
    """The latest time `trigger` fired at or before `now`, looking back at most `lookback`."""
    latest = None
    fire = trigger.get_next_fire_time(None, now - lookback)
    for _ in range(_MAX_FIRE_STEPS):
        if fire is None or fire > now:
            break
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return latest
