"""The digest's arithmetic on hand-made roll-up rows: idle levels, job grouping, queue, groups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from backends.gpu.samples import GpuHolder
from backends.types import JobRef, JobState, JobStatus
from bot.store.telemetry import GpuUsage, Resolution
from bot.telemetry.digest import (
    DigestThresholds,
    IdleLevel,
    group_figures,
    idle_jobs,
    idle_level,
    queue_figures,
    top_users,
    unattributed,
)

T0 = datetime(2026, 3, 2, tzinfo=UTC)
DEFAULT = DigestThresholds()


def usage(
    gpu: str,
    holder: GpuHolder | None,
    hours: float,
    util: float | None,
    memory_used: float = 0.0,
    memory_total: float | None = None,
    first: datetime = T0,
) -> GpuUsage:
    samples = int(hours * 120)
    return GpuUsage(
        host="node1",
        gpu=gpu,
        holder=holder,
        model="NVIDIA L40S",
        mig_profile=None,
        samples=samples,
        seconds=hours * 3600,
        util_samples=samples if util is not None else 0,
        util_sum=samples * util if util is not None else 0.0,
        util_min=util,
        util_max=util,
        memory_samples=samples,
        memory_used_sum=samples * memory_used,
        memory_used_max=memory_used,
        memory_total=memory_total,
        power_samples=0,
        power_sum=0.0,
        power_max=None,
        first_bucket=first,
        last_bucket=first + timedelta(hours=hours - 1),
    )


@pytest.mark.parametrize(
    ("mean", "level"),
    [
        (0.0, IdleLevel.UNUSED),
        (0.01, IdleLevel.LOW),
        (15.0, IdleLevel.LOW),
        (15.01, IdleLevel.SOMEWHAT_LOW),
        (25.0, IdleLevel.SOMEWHAT_LOW),
        (25.01, None),
        (100.0, None),
    ],
)
def test_jobstats_levels(mean: float, level: IdleLevel | None) -> None:
    assert idle_level(mean, DEFAULT) is level


def test_thresholds_must_be_in_order() -> None:
    with pytest.raises(ValidationError, match="must not exceed"):
        DigestThresholds(low_pct=30, somewhat_low_pct=20)
    with pytest.raises(ValidationError):
        DigestThresholds(low_pct=-1)


def test_a_job_on_several_gpus_is_judged_on_its_sample_weighted_mean() -> None:
    job = GpuHolder("slurm", "7", "alice")
    rows = [
        usage("0", job, 3, 0.0, first=T0 + timedelta(hours=1)),
        usage("1", job, 1, 40.0, first=T0),
        usage("2", GpuHolder("slurm", "8", "bob"), 4, None),  # never measured: not judged
        usage("3", GpuHolder("slurm", "9", "carol"), 0.5, 0.0),  # too short to judge
        usage("4", None, 5, 0.0),  # nobody's job
    ]
    (found,) = idle_jobs(rows, Resolution.HOUR, DEFAULT)
    assert (found.job_id, found.owner, found.gpus, found.gpu_names) == (
        "7",
        "alice",
        2,
        ("node1:0", "node1:1"),
    )
    assert (found.gpu_hours, found.held_hours, found.mean_utilization_pct) == (4.0, 2.0, 10.0)
    assert (found.level, found.since, found.last_seen) == (IdleLevel.LOW, T0, T0 + timedelta(hours=4))


def test_group_figures_keep_unattributed_and_unmeasured_time_apart() -> None:
    rows = [
        usage("0", GpuHolder("slurm", "7", "alice"), 2, 50.0, memory_used=20.0, memory_total=100.0),
        usage("1", GpuHolder("slurm", "8", "bob"), 2, None, memory_used=10.0),  # no total: no memory share
        usage("2", None, 4, 10.0, memory_used=0.0, memory_total=100.0),
    ]
    figures = group_figures("cluster", rows)
    assert (figures.gpus, figures.gpu_hours, figures.allocated_gpu_hours) == (3, 8.0, 4.0)
    assert (figures.used_gpu_hours, figures.unmeasured_gpu_hours, figures.allocated_used_pct) == (
        1.0,
        2.0,
        50.0,
    )
    assert figures.mean_utilization_pct == pytest.approx((2 * 50 + 4 * 10) / 6)
    assert figures.mean_memory_used_pct == pytest.approx(100 * (2 * 20) / (6 * 100))

    found = unattributed(rows, DEFAULT)
    assert (found.gpus, found.gpu_hours, found.mean_utilization_pct, found.busy_gpus) == (1, 4.0, 10.0, ())


def test_top_users_are_ranked_by_gpu_hours_then_name() -> None:
    rows = [
        usage("0", GpuHolder("slurm", "1", "bob"), 3, 10.0),
        usage("1", GpuHolder("slurm", "2", "alice"), 3, 90.0),
        usage("2", GpuHolder("k8s", "ns/x", "carol"), 5, 50.0),
        usage("3", GpuHolder("slurm", "4", "carol"), 1, 50.0),
    ]
    assert [(u.owner, u.jobs, u.gpu_hours) for u in top_users(rows, 2)] == [
        ("carol", 2, 6.0),
        ("alice", 1, 3.0),
    ]


def pending(job_id: str, reason: str | None, waited: timedelta | None) -> JobStatus:
    return JobStatus(
        ref=JobRef(backend="slurm", job_id=job_id),
        name=job_id,
        user=f"user{job_id}",
        state=JobState.PENDING,
        raw_state="PENDING",
        reason=reason,
        submitted_at=T0 - waited if waited is not None else None,
    )


def test_queue_figures() -> None:
    running = JobStatus(
        ref=JobRef(backend="slurm", job_id="9"),
        name="r",
        user="x",
        state=JobState.RUNNING,
        raw_state="RUNNING",
    )
    jobs = [
        pending("1", "Priority", timedelta(hours=1)),
        pending("2", "Resources", None),  # no submit time: counted, but has no wait
        pending("3", "Resources", timedelta(hours=3)),
        pending("4", "Priority", timedelta(minutes=5)),
        running,
    ]
    queue = queue_figures(jobs, T0)
    assert (queue.pending, queue.longest_wait, queue.longest_waiting_job) == (4, timedelta(hours=3), "3")
    # A tie between two reasons is broken by name, so the digest does not flip from run to run.
    assert (queue.most_common_reason, queue.reasons) == ("Priority", (("Priority", 2), ("Resources", 2)))

    empty = queue_figures([running], T0)
    assert (empty.pending, empty.longest_wait, empty.most_common_reason, empty.reasons) == (0, None, None, ())
