"""The schedule on a real database (SQLite and PostgreSQL): one leader, digests posted once per period.

APScheduler runs on the wall clock, so "the bot was down while a digest was due" is arranged the
way it happens: the job's stored next run time lies in the past when a scheduler starts. A bare
APScheduler on the same job store moves it there (`_make_due`), as time passing would. Leases take
the test's clock, so a takeover needs no waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from bot.store import Store
from bot.store.database import create_store_engine, supported_url
from bot.store.schedule import ScheduleStore
from bot.store.tables import Base
from bot.telemetry.schedule import (
    JOBS_TABLE,
    DigestRun,
    Schedule,
    ScheduledWork,
    latest_fire_time,
)
from bot.telemetry.schedule_settings import (
    DigestSchedule,
    ScheduleSettings,
    WeeklySummary,
    crontab_trigger,
    window,
)
from tests.helpers.threads import at_once

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=60)
CHANNEL = "C0DIGEST"
WAIT_S = 10.0
OUR_TABLES = {"schedule_leases", "schedule_runs", "gpu_nudges"}


class Posted:
    """The digests the schedule asked to post, in order (the work is a plain callable)."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: list[DigestRun] = []
        self.fail = fail
        self._changed = threading.Condition()

    def __call__(self, run: DigestRun) -> None:
        with self._changed:
            self.runs.append(run)
            self._changed.notify_all()
        if self.fail:
            raise RuntimeError("Slack is down")

    def wait_for(self, count: int) -> list[DigestRun]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.runs) >= count, WAIT_S):
                raise AssertionError(f"expected {count} digest post(s), got {self.runs}")
            return list(self.runs)


class Clock:
    """Real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


def _now_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _daily_cron_half_a_day_away() -> tuple[str, datetime]:
    """A daily crontab line whose latest firing was about 12 h ago (so the next is ~12 h away,
    never during a test), and that latest firing."""
    fires = _now_minute() + timedelta(hours=12)
    return f"{fires.minute} {fires.hour} * * *", fires - timedelta(days=1)


def _settings(digest: DigestSchedule, **changes: object) -> ScheduleSettings:
    values: dict[str, object] = {
        "digests": (digest,),
        "sample_interval_s": None,
        "nudge_interval_s": None,
        "housekeeping_interval_s": None,
        "misfire_grace_time_s": 2 * 24 * 3600,
        **changes,
    }
    return ScheduleSettings.model_validate(values)


def _daily_digest(
    chart: bool = True, **changes: object
) -> tuple[DigestSchedule, ScheduleSettings, str, datetime]:
    """A daily digest half a day away, its settings, its job id and its latest firing."""
    cron, due = _daily_cron_half_a_day_away()
    digest = DigestSchedule(channel=CHANNEL, cron=cron, chart=chart)
    return digest, _settings(digest, **changes), f"digest.{digest.key}", due


def _make_due(database_url: str, job_id: str, when: datetime) -> None:
    """Move a stored job's next run time, as a bot that was down while time passed would find it."""
    store = SQLAlchemyJobStore(engine=create_store_engine(supported_url(database_url)), tablename=JOBS_TABLE)
    bare = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    bare.start(paused=True)
    try:
        bare.modify_job(job_id, next_run_time=when)
    finally:
        # Detached first: APScheduler's thread looks for due jobs once more at shutdown.
        bare.remove_jobstore("default")
        bare.shutdown(wait=False)


def _stored_then_due(
    database_url: str,
    settings: ScheduleSettings,
    job_id: str,
    when: datetime,
    work: ScheduledWork | None = None,
) -> None:
    """A leader stores the schedule's jobs and stops; then the job comes due at `when`."""
    first = Schedule(database_url, settings, work or ScheduledWork(Posted()), holder="first")
    assert first.step()
    first.shutdown()
    _make_due(database_url, job_id, when)


def _lead_until(
    database_url: str, settings: ScheduleSettings, work: ScheduledWork, job_id: str, next_run: datetime
) -> None:
    """A replica leads until the job's next run is `next_run` (the due run done), then stops."""
    back = Schedule(database_url, settings, work, holder="back")
    assert back.step()
    _wait_until(lambda: back.next_runs()[job_id] == next_run)
    back.shutdown()


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=WAIT_S)
    while not condition():
        if datetime.now(UTC) > deadline:
            raise AssertionError("the scheduler did not get there in time")
        threading.Event().wait(0.02)


# --- the lease ----------------------------------------------------------------------------------


def test_the_lease_has_one_holder_until_it_expires_then_another_takes_over(store: Store) -> None:
    leases = ScheduleStore(store.engine)
    assert leases.hold_lease("schedule", "a", T0, TTL)
    assert not leases.hold_lease("schedule", "b", T0 + timedelta(seconds=1), TTL)
    assert leases.hold_lease("schedule", "a", T0 + timedelta(seconds=30), TTL)  # renewed to 09:01:30
    assert not leases.hold_lease("schedule", "b", T0 + timedelta(seconds=89), TTL)
    assert leases.hold_lease("schedule", "b", T0 + timedelta(seconds=90), TTL)  # a went silent
    assert not leases.hold_lease("schedule", "a", T0 + timedelta(seconds=91), TTL)
    lease = leases.lease("schedule")
    assert lease is not None and lease.holder == "b"
    assert lease.acquired_at == T0 + timedelta(seconds=90)
    assert lease.expires_at == T0 + timedelta(seconds=150)
    # A clean shutdown hands it over at once.
    leases.release_lease("schedule", "b", T0 + timedelta(seconds=100))
    assert leases.hold_lease("schedule", "a", T0 + timedelta(seconds=100), TTL)
    leases.release_lease("schedule", "b", T0 + timedelta(seconds=101))  # b holds nothing: no effect
    assert not leases.hold_lease("schedule", "b", T0 + timedelta(seconds=102), TTL)


def _race_for_the_lease(engines: list[Engine], holders: list[str], now: datetime) -> list[str]:
    """Every replica asks for the lease at the same moment; the holders that got it."""
    barrier = threading.Barrier(len(engines))
    won: list[str] = []

    def ask(engine: Engine, holder: str) -> None:
        leases = ScheduleStore(engine)
        barrier.wait()
        if leases.hold_lease("schedule", holder, now, TTL):
            won.append(holder)

    at_once(ask, zip(engines, holders, strict=True), WAIT_S)
    return won


def test_of_many_replicas_racing_for_the_lease_exactly_one_wins(store: Store, database_url: str) -> None:
    engines = [create_store_engine(supported_url(database_url)) for _ in range(8)]
    try:
        for round, now in enumerate((T0, T0 + 2 * TTL)):  # a fresh lease, then an expired one
            holders = [f"replica-{index}-{round}" for index in range(len(engines))]
            won = _race_for_the_lease(engines, holders, now)
            assert len(won) == 1, won
            lease = ScheduleStore(store.engine).lease("schedule")
            assert lease is not None and lease.holder == won[0]
    finally:
        for engine in engines:
            engine.dispose()


def test_only_the_lease_holder_runs_a_scheduler_and_a_silent_one_is_replaced(
    store: Store, database_url: str
) -> None:
    cron, _ = _daily_cron_half_a_day_away()
    settings = _settings(DigestSchedule(channel=CHANNEL, cron=cron))
    late = Clock()
    first = Schedule(database_url, settings, ScheduledWork(Posted()), holder="first")
    second = Schedule(database_url, settings, ScheduledWork(Posted()), holder="second", clock=late)
    try:
        assert first.step() and first.is_leader
        assert not second.step() and not second.is_leader
        assert second.next_runs() == {}
        late.offset = timedelta(seconds=settings.lease_ttl_s + 1)  # first has not renewed since
        assert second.step() and second.is_leader
        assert not first.step() and not first.is_leader  # it finds out at its next renewal
        lease = ScheduleStore(store.engine).lease("schedule")
        assert lease is not None and lease.holder == "second"
        assert list(second.next_runs()) == [f"digest.digest:{CHANNEL}:{cron}:24h"]
    finally:
        second.shutdown()
        first.shutdown()


def test_a_waiting_replica_takes_over_once_a_silent_leaders_lease_runs_out(
    store: Store, database_url: str
) -> None:
    cron, _ = _daily_cron_half_a_day_away()
    settings = _settings(DigestSchedule(channel=CHANNEL, cron=cron), lease_ttl_s=1.0, lease_renew_s=0.2)
    silent = Schedule(database_url, settings, ScheduledWork(Posted()), holder="silent")
    waiting = Schedule(database_url, settings, ScheduledWork(Posted()), holder="waiting")
    try:
        assert silent.step()  # leads once, and never renews (no start(): as if it hung)
        waiting.start()
        assert not waiting.is_leader
        _wait_until(lambda: waiting.is_leader)
        lease = ScheduleStore(store.engine).lease("schedule")
        assert lease is not None and lease.holder == "waiting"
        assert not silent.step() and not silent.is_leader  # it wakes up and steps down
    finally:
        waiting.shutdown()
        silent.shutdown()


# --- digests across restarts ---------------------------------------------------------------------


def test_a_digest_due_while_the_bot_was_down_is_posted_once_when_it_comes_back(
    store: Store, database_url: str
) -> None:
    digest, settings, job_id, due = _daily_digest(chart=False)
    before = Schedule(database_url, settings, ScheduledWork(Posted()), holder="before-restart")
    assert before.step()
    assert before.next_runs() == {job_id: due + timedelta(days=1)}
    before.shutdown()
    _make_due(database_url, job_id, due)  # the bot was down when it came due

    # Two replicas come back at once; the leader posts the missed digest, once.
    posted = Posted()
    replicas = [
        Schedule(database_url, settings, ScheduledWork(posted), holder=f"after-restart-{i}") for i in range(2)
    ]
    at_once(Schedule.step, [(replica,) for replica in replicas], WAIT_S)
    assert sum(replica.is_leader for replica in replicas) == 1
    posted.wait_for(1)
    (leader,) = [replica for replica in replicas if replica.is_leader]
    _wait_until(lambda: leader.next_runs()[job_id] == due + timedelta(days=1))
    for replica in replicas:
        replica.shutdown()  # waits for a running job
    assert posted.runs == [DigestRun(digest.key, "digest", CHANNEL, False, due - timedelta(hours=24), due)]
    (run,) = ScheduleStore(store.engine).runs(digest.key)
    assert run.period_end == due and run.posted_at is not None


def test_a_digest_due_at_the_moment_of_a_shutdown_is_posted_by_the_next_leader(
    store: Store, database_url: str
) -> None:
    _, settings, job_id, due = _daily_digest()
    posted = Posted()
    stopping = Schedule(database_url, settings, ScheduledWork(posted), holder="stopping")
    assert stopping.step()
    _make_due(database_url, job_id, due)  # due now; its scheduler sleeps until its next wake-up
    stopping.shutdown()
    # Usually the stopping scheduler never wakes up for it; on a busy machine it may still post
    # it before it stops. Either way the digest must be posted exactly once, by one of the two.
    following = Schedule(database_url, settings, ScheduledWork(posted), holder="following")
    assert following.step()
    posted.wait_for(1)
    _wait_until(lambda: following.next_runs()[job_id] == due + timedelta(days=1))
    following.shutdown()
    assert [run.period_end for run in posted.runs] == [due]


def test_a_period_posted_before_a_restart_is_not_posted_again(store: Store, database_url: str) -> None:
    digest, settings, job_id, due = _daily_digest()
    posted = Posted()
    _stored_then_due(database_url, settings, job_id, due)
    again = Schedule(database_url, settings, ScheduledWork(posted), holder="again")
    assert again.step()
    posted.wait_for(1)
    again.shutdown()

    # The job store says the period is due again (a crash before it moved on, a restore, a
    # replica with an old view): the run happens, the post does not.
    _make_due(database_url, job_id, due)
    _lead_until(database_url, settings, ScheduledWork(posted), job_id, due + timedelta(days=1))
    assert len(posted.runs) == 1
    assert [run.holder for run in ScheduleStore(store.engine).runs(digest.key)] == ["again"]


def test_a_failed_post_leaves_the_period_unclaimed(store: Store, database_url: str) -> None:
    digest, settings, job_id, due = _daily_digest()
    failing = Posted(fail=True)
    _stored_then_due(database_url, settings, job_id, due)
    down = Schedule(database_url, settings, ScheduledWork(failing), holder="slack-down")
    assert down.step()
    failing.wait_for(1)
    down.shutdown()
    assert ScheduleStore(store.engine).runs(digest.key) == []

    _make_due(database_url, job_id, due)  # e.g. an admin re-runs it
    posted = Posted()
    up = Schedule(database_url, settings, ScheduledWork(posted), holder="slack-up")
    assert up.step()
    (run,) = posted.wait_for(1)
    up.shutdown()
    assert run.period_end == due
    assert [r.holder for r in ScheduleStore(store.engine).runs(digest.key)] == ["slack-up"]


def test_a_coalesced_run_posts_the_latest_missed_period(store: Store, database_url: str) -> None:
    hourly_at = (_now_minute() + timedelta(minutes=30)).minute  # the next firing is ~30 min away
    cron = f"{hourly_at} * * * *"
    digest = DigestSchedule(channel=CHANNEL, cron=cron, since="1h")
    settings = _settings(digest)
    job_id = f"digest.{digest.key}"
    latest = latest_fire_time(crontab_trigger(cron, ZoneInfo("UTC")), datetime.now(UTC), timedelta(hours=2))
    assert latest is not None
    _stored_then_due(database_url, settings, job_id, latest - timedelta(hours=4))  # 5 hourly digests missed
    posted = Posted()
    _lead_until(database_url, settings, ScheduledWork(posted), job_id, latest + timedelta(hours=1))
    assert posted.runs == [
        DigestRun(digest.key, "digest", CHANNEL, True, latest - timedelta(hours=1), latest)
    ]


@pytest.mark.parametrize(("coalesce", "runs"), [(True, 1), (False, 5)], ids=["coalesced", "each"])
def test_missed_runs_of_a_job_run_once_when_coalesced(
    store: Store, database_url: str, coalesce: bool, runs: int
) -> None:
    samples: list[datetime] = []
    settings = ScheduleSettings(
        sample_interval_s=600, nudge_interval_s=None, coalesce=coalesce, misfire_grace_time_s=2 * 24 * 3600
    )
    work = ScheduledWork(Posted(), sample=lambda: samples.append(datetime.now(UTC)))
    missed_since = datetime.now(UTC) - timedelta(minutes=45)  # due 45, 35, 25, 15 and 5 min ago
    _stored_then_due(database_url, settings, "sample", missed_since, work)
    _lead_until(database_url, settings, work, "sample", missed_since + timedelta(minutes=50))
    assert len(samples) == runs


def test_a_run_missed_by_more_than_the_grace_time_is_skipped(store: Store, database_url: str) -> None:
    _, settings, job_id, due = _daily_digest(misfire_grace_time_s=3600)  # the run is ~12 h late
    _stored_then_due(database_url, settings, job_id, due)
    posted = Posted()
    _lead_until(database_url, settings, ScheduledWork(posted), job_id, due + timedelta(days=1))
    assert posted.runs == []


def test_a_restart_keeps_unchanged_jobs_rewrites_changed_ones_and_drops_the_rest(
    store: Store, database_url: str
) -> None:
    cron, due = _daily_cron_half_a_day_away()
    daily = DigestSchedule(channel=CHANNEL, cron=cron, name="daily")
    weekly = WeeklySummary(channel="C0WEEKLY")
    marker = due + timedelta(days=10)  # a next run time no trigger would compute

    def restarted(settings: ScheduleSettings) -> dict[str, datetime | None]:
        replica = Schedule(database_url, settings, ScheduledWork(Posted()), holder="replica")
        try:
            assert replica.step()
            return replica.next_runs()
        finally:
            replica.shutdown()

    first = restarted(_settings(daily, weekly=weekly))
    next_weekly = first[f"weekly.{weekly.key}"]
    assert next_weekly is not None and next_weekly.strftime("%a %H:%M") == "Mon 09:00"  # crontab's 1
    _make_due(database_url, "digest.daily", marker)
    assert restarted(_settings(daily)) == {"digest.daily": marker}  # unchanged: kept; weekly: gone
    changed = daily.model_copy(update={"chart": False})
    assert restarted(_settings(changed)) == {"digest.daily": due + timedelta(days=1)}


# --- settings and schema -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weekday_field", "fires_on"),
    [("1", "Mon"), ("0", "Sun"), ("7", "Sun"), ("1-5", "MonTueWedThuFri"), ("fri-sun", "FriSatSun")],
)
def test_crontab_weekdays_mean_what_crontab_says(weekday_field: str, fires_on: str) -> None:
    trigger = crontab_trigger(f"0 9 * * {weekday_field}", ZoneInfo("UTC"))
    fire, days = trigger.get_next_fire_time(None, T0), []  # T0 is a Monday
    while fire < T0 + timedelta(days=7):
        days.append(fire.strftime("%a"))
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert "".join(sorted(days, key=["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].index)) == fires_on


def test_settings_refuse_what_would_misfire() -> None:
    assert window("90m") == timedelta(minutes=90) and window("2w") == timedelta(days=14)
    with pytest.raises(ValueError, match="not a window"):
        DigestSchedule(channel=CHANNEL, since="a day")
    with pytest.raises(ValueError, match="needs 5 fields"):
        DigestSchedule(channel=CHANNEL, cron="0 9 * *")
    with pytest.raises(ValueError, match="must be shorter than lease_ttl_s"):
        ScheduleSettings(lease_ttl_s=10, lease_renew_s=10)
    with pytest.raises(ValueError, match="same name"):
        ScheduleSettings(digests=(DigestSchedule(channel=CHANNEL), DigestSchedule(channel=CHANNEL)))
    with pytest.raises(ValueError, match="IANA"):
        ScheduleSettings(timezone="Mars/Olympus")


def test_latest_fire_time_finds_the_period_a_late_run_belongs_to() -> None:
    trigger = crontab_trigger("0 9 * * *", ZoneInfo("Europe/Berlin"))
    at_nine_berlin = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert (
        latest_fire_time(trigger, at_nine_berlin + timedelta(hours=5), timedelta(hours=6)) == at_nine_berlin
    )
    assert latest_fire_time(trigger, at_nine_berlin + timedelta(hours=5), timedelta(hours=4)) is None
    assert latest_fire_time(trigger, at_nine_berlin, timedelta(hours=1)) == at_nine_berlin


def test_the_schedule_tables_match_their_migration(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
    assert [d for d in diffs if any(table in repr(d) for table in OUR_TABLES)] == []


def test_housekeeping_runs_on_its_interval_from_the_leader(store: Store, database_url: str) -> None:
    swept: list[datetime] = []
    settings = ScheduleSettings(sample_interval_s=None, nudge_interval_s=None, housekeeping_interval_s=3600)
    work = ScheduledWork(Posted(), housekeeping=lambda: swept.append(datetime.now(UTC)))
    first = Schedule(database_url, settings, work, holder="first")
    assert first.step()
    assert list(first.next_runs()) == ["housekeeping"]
    first.shutdown()
    assert swept == []  # its first run is an interval away
    missed_since = datetime.now(UTC) - timedelta(minutes=10)
    _make_due(database_url, "housekeeping", missed_since)
    _lead_until(database_url, settings, work, "housekeeping", missed_since + timedelta(hours=1))
    assert len(swept) == 1
