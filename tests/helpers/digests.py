"""A digest with every section filled, for the tests that render or post one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.settings import DigestThresholds
from bot.store.telemetry import Resolution
from bot.telemetry.digest import (
    Digest,
    GroupFigures,
    IdleJob,
    IdleLevel,
    QueueFigures,
    Trend,
    Unattributed,
    UserFigures,
)

SINCE = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)


def group(name: str, gpus: int = 8, util: float | None = 40.0) -> GroupFigures:
    return GroupFigures(
        name=name,
        gpus=gpus,
        gpu_hours=gpus * 24.0,
        allocated_gpu_hours=gpus * 20.0,
        used_gpu_hours=gpus * 8.0,
        unmeasured_gpu_hours=0.0,
        mean_utilization_pct=util,
        mean_memory_used_pct=30.0,
    )


def idle(i: int, owner: str = "") -> IdleJob:
    return IdleJob(
        backend="slurm",
        job_id=str(1000 + i),
        owner=owner or f"user{i}",
        gpus=1 + i % 8,
        gpu_names=(f"node{i}:0",),
        models=("NVIDIA H100 80GB HBM3",),
        gpu_hours=float(1 + i % 8) * 5,
        mean_utilization_pct=float(i % 20),
        level=IdleLevel.LOW if i % 20 else IdleLevel.UNUSED,
        since=SINCE + timedelta(hours=i % 24),
        last_seen=UNTIL,
    )


def digest(idle_jobs: int = 3, models: int = 2, users: int = 3, owner: str = "", gpus: int = 1000) -> Digest:
    return Digest(
        since=SINCE,
        until=UNTIL,
        resolution=Resolution.HOUR,
        cluster=group("cluster", gpus=gpus),
        by_model=tuple(group(f"NVIDIA model {i}") for i in range(models)),
        by_partition=(group("gpu-a100"),),
        idle=tuple(idle(i, owner) for i in range(idle_jobs)),
        top_users=tuple(UserFigures(f"user{i}", 2, 100.0 - i, 50.0, 50.0) for i in range(users)),
        queue=QueueFigures(
            4, timedelta(hours=26, minutes=5), "201", "dave", "Resources", (("Resources", 4),)
        ),
        trend=Trend(SINCE - timedelta(days=1), SINCE, 990, 35.0, 18_000.0, 6_000.0, 5.0, 2_000.0, 2_000.0),
        unattributed=Unattributed(12, 200.0, 3.0, tuple(f"node{i}:1" for i in range(30))),
        thresholds=DigestThresholds(),
    )
