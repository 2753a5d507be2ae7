"""The digest's figures from real roll-ups (SQLite and PostgreSQL), for a day whose answer is known.

The day 2026-03-02 (UTC), samples every 30 s:
- node1:0 (A100) held by alice's job 101 from 00:00 to 10:00 at 0 %, then no job from 12:00 to
  14:00 at 50 % (busy without a job);
- node1:1 (A100) held by bob's job 102 from 00:00 to 06:00 at 12 %;
- node2:0 (H100) held by carol's job 103 from 00:00 to 08:00 at 80 %;
- node2:1 (H100, MIG-enabled: no utilisation reading) held by carol's job 104 from 00:00 to 03:00.
The day before, node2:0 was held by carol's job 99 for 4 h at 50 %.
Every GPU has 80,000 MiB; memory used is 8,000 (alice), 16,000 (bob), 64,000 (carol's 103),
40,000 (carol's 104) and 0 (no job).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from matplotlib.image import imread

from backends.gpu.samples import GpuHolder
from backends.types import GpuAsk, JobRef, JobState, JobStatus
from bot.slack.blocks import as_dicts
from bot.slack.digest_blocks import digest_blocks, digest_summary
from bot.store import Store
from bot.store.schedule import ScheduleStore
from bot.store.telemetry import Resolution, TelemetryStore
from bot.telemetry.chart import utilization_chart
from bot.telemetry.digest import DigestThresholds, IdleLevel, build_digest, idle_allocations
from bot.telemetry.digest_text import render_digest
from bot.telemetry.nudges import NudgeSettings, NudgeStatus, nudge_overview
from bot.telemetry.reporting import DigestMaker
from tests.helpers.telemetry import held

SINCE = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)
A100, H100 = "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3"
ALICE = GpuHolder("slurm", "101", "alice")
BOB = GpuHolder("slurm", "102", "bob")
CAROL = GpuHolder("slurm", "103", "carol")
CAROL_MIG = GpuHolder("k8s", "ml/serve-104", "carol")
CAROL_BEFORE = GpuHolder("slurm", "99", "carol")
PER_HOUR = 120  # samples every 30 s


def job(job_id: str, user: str, state: JobState, **more: object) -> JobStatus:
    return JobStatus(
        ref=JobRef(backend="slurm", job_id=job_id),
        name=f"job-{job_id}",
        user=user,
        state=state,
        raw_state=state.value.upper(),
        gpus=(GpuAsk(count=1, gpu_type="a100"),),
        **more,  # type: ignore[arg-type]
    )


QUEUE = [
    job("201", "dave", JobState.PENDING, reason="Resources", submitted_at=UNTIL - timedelta(hours=5)),
    job("202", "erin", JobState.PENDING, reason="Priority", submitted_at=UNTIL - timedelta(hours=2)),
    job("203", "dave", JobState.PENDING, reason="Resources", submitted_at=UNTIL - timedelta(minutes=30)),
    job("101", "alice", JobState.RUNNING, partition="gpu-a100"),
    job("102", "bob", JobState.RUNNING, partition="gpu-a100"),
    job("103", "carol", JobState.RUNNING, partition="gpu-h100"),
]


@pytest.fixture
def telemetry(store: Store) -> TelemetryStore:
    recorded = TelemetryStore(store.engine, clock=lambda: UNTIL)
    day = [
        *held("node1", "0", A100, SINCE, 10, 0.0, 8_000.0, ALICE),
        *held("node1", "0", A100, SINCE + timedelta(hours=12), 2, 50.0, 0.0, None),
        *held("node1", "1", A100, SINCE, 6, 12.0, 16_000.0, BOB),
        *held("node2", "0", H100, SINCE, 8, 80.0, 64_000.0, CAROL),
        *held("node2", "1", H100, SINCE, 3, None, 40_000.0, CAROL_MIG),
        *held("node2", "0", H100, SINCE - timedelta(hours=6), 4, 50.0, 0.0, CAROL_BEFORE),
    ]
    day.sort(key=lambda pair: pair[0].at)
    for start in range(0, len(day), 5_000):  # batches cut across minutes and hours
        recorded.record(day[start : start + 5_000])
    return recorded


def test_the_day_in_figures(telemetry: TelemetryStore) -> None:
    digest = build_digest(telemetry, SINCE, UNTIL, QUEUE, DigestThresholds())
    assert (digest.since, digest.until, digest.resolution) == (SINCE, UNTIL, Resolution.HOUR)

    cluster = digest.cluster
    assert cluster.gpus == 4
    assert cluster.gpu_hours == 10 + 2 + 6 + 8 + 3
    assert cluster.allocated_gpu_hours == 10 + 6 + 8 + 3
    assert cluster.used_gpu_hours == pytest.approx(6 * 0.12 + 8 * 0.80)
    assert cluster.unmeasured_gpu_hours == 3
    util_samples = (10 + 2 + 6 + 8) * PER_HOUR
    assert cluster.mean_utilization_pct == pytest.approx((2 * 50 + 6 * 12 + 8 * 80) * PER_HOUR / util_samples)
    memory_used = (10 * 8_000 + 2 * 0 + 6 * 16_000 + 8 * 64_000 + 3 * 40_000) * PER_HOUR
    assert cluster.mean_memory_used_pct == pytest.approx(
        100 * memory_used / ((10 + 2 + 6 + 8 + 3) * PER_HOUR * 80_000)
    )
    assert cluster.allocated_used_pct == pytest.approx(100 * (0.72 + 6.4) / 24)

    a100, h100 = digest.by_model  # ranked by GPU-hours: A100 18 h, H100 11 h
    assert (a100.name, a100.gpus, a100.gpu_hours, a100.allocated_gpu_hours) == (A100, 2, 18, 16)
    assert a100.mean_utilization_pct == pytest.approx((2 * 50 + 6 * 12) / (10 + 2 + 6))
    assert a100.used_gpu_hours == pytest.approx(0.72)
    assert (h100.name, h100.gpus, h100.allocated_gpu_hours, h100.unmeasured_gpu_hours) == (H100, 2, 11, 3)
    assert h100.mean_utilization_pct == 80.0
    assert h100.used_gpu_hours == pytest.approx(6.4)

    # Job 104 (Kubernetes) is not in the Slurm listing, so only listed jobs' GPUs have a partition.
    assert [(p.name, p.gpus, p.allocated_gpu_hours) for p in digest.by_partition] == [
        ("gpu-a100", 2, 16),
        ("gpu-h100", 1, 8),
    ]

    alice, bob = digest.idle
    assert (alice.job_id, alice.owner, alice.backend, alice.level) == (
        "101",
        "alice",
        "slurm",
        IdleLevel.UNUSED,
    )
    assert (alice.gpus, alice.gpu_names, alice.held_hours, alice.mean_utilization_pct) == (
        1,
        ("node1:0",),
        10,
        0,
    )
    assert (alice.since, alice.last_seen) == (SINCE, SINCE + timedelta(hours=10))
    assert (bob.job_id, bob.level, bob.held_hours, bob.mean_utilization_pct) == (
        "102",
        IdleLevel.LOW,
        6,
        12.0,
    )

    assert [(u.owner, u.jobs, u.gpu_hours) for u in digest.top_users] == [
        ("carol", 2, 11),
        ("alice", 1, 10),
        ("bob", 1, 6),
    ]
    assert digest.top_users[0].used_gpu_hours == pytest.approx(6.4)

    queue = digest.queue
    assert (queue.pending, queue.longest_wait, queue.longest_waiting_job) == (3, timedelta(hours=5), "201")
    assert (queue.longest_waiting_user, queue.most_common_reason) == ("dave", "Resources")
    assert queue.reasons == (("Resources", 2), ("Priority", 1))

    trend = digest.trend
    assert trend is not None
    assert (trend.since, trend.until) == (SINCE - timedelta(days=1), SINCE)
    assert (trend.mean_utilization_pct, trend.allocated_gpu_hours, trend.used_gpu_hours) == (50.0, 4, 2.0)
    assert trend.utilization_change_points == pytest.approx(812 / 26 - 50)
    assert trend.allocated_gpu_hours_change == 27 - 4
    assert trend.used_gpu_hours_change == pytest.approx(7.12 - 2)

    gone = digest.unattributed
    assert (gone.gpus, gone.gpu_hours, gone.mean_utilization_pct, gone.busy_gpus) == (
        1,
        2,
        50.0,
        ("node1:0",),
    )


def test_thresholds_decide_what_is_idle(telemetry: TelemetryStore) -> None:
    strict = DigestThresholds(low_pct=10, somewhat_low_pct=12)
    assert [(j.job_id, j.level) for j in idle_allocations(telemetry, SINCE, UNTIL, strict)] == [
        ("101", IdleLevel.UNUSED),
        ("102", IdleLevel.SOMEWHAT_LOW),
    ]
    # Bob's 6 GPU-hours are too few to judge when 8 are required; alice's 10 are not.
    patient = DigestThresholds(min_held_gpu_hours=8)
    assert [j.job_id for j in idle_allocations(telemetry, SINCE, UNTIL, patient)] == ["101"]


def test_a_short_window_reads_minutes(store: Store, telemetry: TelemetryStore) -> None:
    # 05:30-06:30: bob's job ends at 06:00, so it held its GPU for 30 minutes of the window.
    since = SINCE + timedelta(hours=5, minutes=30)
    clock_store = TelemetryStore(store.engine, clock=lambda: since + timedelta(hours=1))
    digest = build_digest(clock_store, since, since + timedelta(hours=1), [], previous_period=False)
    assert digest.resolution is Resolution.MINUTE
    assert digest.trend is None
    assert [j.job_id for j in digest.idle] == ["101"]  # bob's 0.5 GPU-h are too few to judge by default
    found = idle_allocations(
        clock_store, since, since + timedelta(hours=1), DigestThresholds(min_held_gpu_hours=0.5)
    )
    assert [(j.job_id, j.held_hours, j.last_seen) for j in found] == [
        ("101", 1.0, since + timedelta(hours=1)),
        ("102", 0.5, SINCE + timedelta(hours=6)),
    ]


def test_the_renderers_say_it(telemetry: TelemetryStore) -> None:
    digest = build_digest(telemetry, SINCE, UNTIL, QUEUE)
    text = render_digest(digest)
    assert text.splitlines()[0] == "GPU digest 2026-03-02 00:00 UTC → 2026-03-03 00:00 UTC (hour roll-ups)"
    assert "Cluster: 4 GPUs, mean utilisation 31.2 % (▼ 18.8 points vs previous), memory 34.8 % used" in text
    assert "GPU-hours: 27.0 GPU-h allocated, 7.1 used (29.7 % of the measured allocated time)" in text
    assert "unused  101  slurm    alice  node1:0  10.0 h  0.0 %" in text
    assert "Queue: 3 pending; longest wait 5 h (job 201, dave); most common reason Resources (2)" in text
    assert "busy without a job: node1:0" in text

    blocks = as_dicts(digest_blocks(digest))
    assert len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    assert "unused: job 101 (slurm) of alice, 1 GPU (node1:0)" in str(blocks)
    assert digest_summary(digest).startswith("GPU digest 2026-03-02 00:00 UTC")

    grid = telemetry.utilization_grid(SINCE, UNTIL)
    first = grid.rows[0]
    assert (first.name, first.utilization_pct[:3], first.utilization_pct[10:14]) == (
        "node1:0",
        (0.0, 0.0, 0.0),
        (None, None, 50.0, 50.0),
    )
    png = utilization_chart(grid, digest.by_model)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert imread(BytesIO(png), format="png").shape == (700, 1200, 4)


def test_the_text_digest_lists_what_was_done_about_idle_jobs(telemetry: TelemetryStore, store: Store) -> None:
    schedule = ScheduleStore(store.engine)
    # Judged at the end of the day; the jobs were last seen hours before, so look back that far.
    settings = NudgeSettings(idle_minutes=60, seen_within_minutes=24 * 60)
    kept_until = UNTIL + timedelta(hours=12)
    schedule.keep("slurm", "101", "alice", kept_until, UNTIL, by="U-ALICE")
    thresholds = DigestThresholds(min_held_gpu_hours=0.5)
    overview = nudge_overview(schedule, settings, clock=lambda: UNTIL)
    maker = DigestMaker(telemetry, lambda: (QUEUE, []), thresholds, overview)

    report = maker.make(SINCE, UNTIL, chart=False)
    assert [(n.job_id, n.status) for n in report.nudges] == [
        ("101", NudgeStatus.KEPT),
        ("102", NudgeStatus.NOT_YET),
    ]
    text = render_digest(report.digest, nudges=report.nudges)
    nudges = text.split("Idle-GPU nudges\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert nudges == [
        "- job 101 (slurm) of alice: 1 GPU at 0.0 % for 10 h; owner chose Keep until 2026-03-03 12:00 UTC",
        "- job 102 (slurm) of bob: 1 GPU at 12.0 % for 6 h; owner told at the next round",
    ]
    assert "Idle-GPU nudges" not in render_digest(report.digest)  # none given, none listed
