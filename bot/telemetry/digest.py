"""The figures of a GPU-use digest for a period, from the roll-ups and the queue; no rendering here.

Why the figures are what they are:
- Utilisation means are sample-weighted (Σ utilisation / Σ samples that had one), so a GPU whose
  source cannot read utilisation (MIG, a partial dcgm-exporter) is left out, never counted as 0 %.
- "Allocated" GPU-hours are the hours of buckets a job held; "used" GPU-hours are each GPU's
  allocated hours × its mean utilisation under that job. Their ratio is how much of what was
  handed out did work.
- Idle jobs are judged with Princeton jobstats' thresholds: mean utilisation exactly 0 is
  "unused", ≤ 15 % "low", ≤ 25 % "somewhat low". A job is judged only once it has held
  `min_held_gpu_hours` in the period, so a job still loading its data is not called idle.
- GPUs no job was found to hold are reported on their own ("unattributed"): they may be free, or
  in use outside the scheduler, or attribution failed; the busy ones are named.
- The digest never reads raw samples: one GROUP BY per period over the roll-ups
  (`TelemetryStore.usage`), then plain Python over at most GPUs × holders rows.
- Where the scheduler keeps accounting (Slurm's sacct), allocated GPU-hours come from it, as
  Princeton's jobstats does: each job's GPUs × the part of its run inside the period, so a job that
  started and ended between two samples still counts; its used hours are those hours × its
  utilisation as the samples measured it (matched by job id), or "without a utilisation reading"
  when no sample saw it. Holders accounting does not list (Kubernetes pods) count as sampled.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from backends.allocations import GpuAllocation
from backends.types import JobState, JobStatus
from bot.settings import DigestThresholds
from bot.store.telemetry import GpuUsage, Resolution, TelemetryStore, floored

CLUSTER = "cluster"


class IdleLevel(StrEnum):
    UNUSED = "unused"
    LOW = "low"
    SOMEWHAT_LOW = "somewhat low"


def idle_level(mean_utilization_pct: float, thresholds: DigestThresholds) -> IdleLevel | None:
    if mean_utilization_pct == 0:
        return IdleLevel.UNUSED
    if mean_utilization_pct <= thresholds.low_pct:
        return IdleLevel.LOW
    if mean_utilization_pct <= thresholds.somewhat_low_pct:
        return IdleLevel.SOMEWHAT_LOW
    return None


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """A set of GPUs over the period: the cluster, one model, or one partition."""

    name: str
    gpus: int
    gpu_hours: float  # every sampled hour, held or not
    allocated_gpu_hours: float
    used_gpu_hours: float
    unmeasured_gpu_hours: float  # allocated hours without any utilisation reading
    mean_utilization_pct: float | None
    mean_memory_used_pct: float | None
    allocated_from: str = "samples"  # or "accounting": where allocated_gpu_hours come from

    @property
    def allocated_used_pct(self) -> float | None:
        """How much of the measured allocated time did work."""
        measured = self.allocated_gpu_hours - self.unmeasured_gpu_hours
        return 100 * self.used_gpu_hours / measured if measured > 0 else None


@dataclass(frozen=True, slots=True)
class IdleJob:
    backend: str
    job_id: str
    owner: str
    gpus: int
    gpu_names: tuple[str, ...]
    models: tuple[str, ...]
    gpu_hours: float
    mean_utilization_pct: float
    level: IdleLevel
    since: datetime  # the first bucket it was seen holding a GPU in the period
    last_seen: datetime  # the end of the last such bucket

    @property
    def held_hours(self) -> float:
        return self.gpu_hours / self.gpus


@dataclass(frozen=True, slots=True)
class UserFigures:
    owner: str
    jobs: int
    gpu_hours: float
    used_gpu_hours: float
    mean_utilization_pct: float | None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    pending: int
    longest_wait: timedelta | None
    longest_waiting_job: str | None
    longest_waiting_user: str | None
    most_common_reason: str | None
    reasons: tuple[tuple[str, int], ...]  # most common first


@dataclass(frozen=True, slots=True)
class Trend:
    """The previous period of the same length, and how this one differs from it."""

    since: datetime
    until: datetime
    gpus: int  # sampled in the previous period; 0: nothing to compare with
    mean_utilization_pct: float | None
    allocated_gpu_hours: float
    used_gpu_hours: float
    utilization_change_points: float | None  # this period's mean minus the previous one's
    allocated_gpu_hours_change: float
    used_gpu_hours_change: float


@dataclass(frozen=True, slots=True)
class Unattributed:
    gpus: int
    gpu_hours: float
    mean_utilization_pct: float | None
    busy_gpus: tuple[str, ...]  # mean utilisation above somewhat_low_pct while no job held them


@dataclass(frozen=True, slots=True)
class Digest:
    since: datetime  # the period actually read: whole buckets
    until: datetime
    resolution: Resolution
    cluster: GroupFigures
    by_model: tuple[GroupFigures, ...]
    by_partition: tuple[GroupFigures, ...]
    idle: tuple[IdleJob, ...]
    top_users: tuple[UserFigures, ...]
    queue: QueueFigures
    trend: Trend | None
    unattributed: Unattributed
    thresholds: DigestThresholds

    @property
    def has_data(self) -> bool:
        return self.cluster.gpus > 0


def build_digest(
    telemetry: TelemetryStore,
    since: datetime,
    until: datetime,
    pending: Sequence[JobStatus],
    thresholds: DigestThresholds | None = None,
    previous_period: bool = True,
    allocations: Sequence[GpuAllocation] | None = None,
) -> Digest:
    """The digest of `[since, until)`. `pending` is the queue as the backends list it: pending jobs
    make the queue figures, and every job listed lends its partition to the GPUs it holds.
    `allocations`: the scheduler's accounting over this period and the previous one (None where it
    has none): allocated GPU-hours, top users and partitions then come from it."""
    thresholds = thresholds or DigestThresholds()
    resolution, usage = telemetry.usage(since, until)
    partition_of: dict[tuple[str, str], str] = {
        (job.ref.backend, job.ref.job_id): job.partition for job in pending if job.partition
    }
    by_partition: dict[str, list[GpuUsage]] = defaultdict(list)
    by_model: dict[str, list[GpuUsage]] = defaultdict(list)
    for row in usage:
        by_model[row.model or "unknown model"].append(row)
        if row.holder and (partition := partition_of.get((row.holder.backend, row.holder.job_id))):
            by_partition[partition].append(row)
    start, end = floored(since, resolution), floored(until, resolution)
    cluster = group_figures(CLUSTER, usage)
    partitions = _ranked(group_figures(name, rows) for name, rows in by_partition.items())
    users = top_users(usage, thresholds.top_users)
    if allocations is not None:
        cluster = accounted_figures(CLUSTER, usage, allocations, start, end)
        partitions = accounted_partitions(usage, allocations, start, end, partition_of)
        users = accounted_users(usage, allocations, start, end, thresholds.top_users)
    trend = None
    if previous_period:
        before_since = start - (end - start)
        _, before = telemetry.usage(before_since, start, resolution)
        earlier = group_figures(CLUSTER, before)
        if allocations is not None:
            earlier = accounted_figures(CLUSTER, before, allocations, before_since, start)
        trend = _trend(before_since, start, cluster, earlier)
    return Digest(
        since=start,
        until=end,
        resolution=resolution,
        cluster=cluster,
        by_model=_ranked(group_figures(name, rows) for name, rows in by_model.items()),
        by_partition=partitions,
        idle=idle_jobs(usage, resolution, thresholds),
        top_users=users,
        queue=queue_figures(pending, until),
        trend=trend,
        unattributed=unattributed(usage, thresholds),
        thresholds=thresholds,
    )


def idle_allocations(
    telemetry: TelemetryStore,
    since: datetime,
    until: datetime,
    thresholds: DigestThresholds | None = None,
) -> tuple[IdleJob, ...]:
    """Jobs whose GPUs were idle over `[since, until)` by the thresholds, the least used first."""
    resolution, usage = telemetry.usage(since, until)
    return idle_jobs(usage, resolution, thresholds or DigestThresholds())


def group_figures(name: str, rows: Sequence[GpuUsage]) -> GroupFigures:
    util_sum = util_samples = 0.0
    memory_used = memory_capacity = 0.0
    hours = allocated = used = unmeasured = 0.0
    for row in rows:
        hours += row.hours
        util_sum += row.util_sum
        util_samples += row.util_samples
        if row.memory_total:
            memory_used += row.memory_used_sum
            memory_capacity += row.memory_samples * row.memory_total
        if row.holder is not None:
            allocated += row.hours
            mean = row.mean_utilization_pct
            if mean is None:
                unmeasured += row.hours
            else:
                used += row.hours * mean / 100
    return GroupFigures(
        name=name,
        gpus=len({(row.host, row.gpu) for row in rows}),
        gpu_hours=hours,
        allocated_gpu_hours=allocated,
        used_gpu_hours=used,
        unmeasured_gpu_hours=unmeasured,
        mean_utilization_pct=util_sum / util_samples if util_samples else None,
        mean_memory_used_pct=100 * memory_used / memory_capacity if memory_capacity else None,
    )


HolderKey = tuple[str, str]  # (backend, job id)


def _by_holder(usage: Sequence[GpuUsage]) -> dict[HolderKey, list[GpuUsage]]:
    held: dict[HolderKey, list[GpuUsage]] = defaultdict(list)
    for row in usage:
        if row.holder is not None:
            held[(row.holder.backend, row.holder.job_id)].append(row)
    return held


@dataclass(slots=True)
class _Hours:
    allocated: float = 0.0
    used: float = 0.0
    unmeasured: float = 0.0
    jobs: int = 0

    def add(self, hours: float, rows: Sequence[GpuUsage]) -> None:
        """`hours` allocated to one job whose samples are `rows` (utilisation-weighted as sampled)."""
        util_samples = sum(row.util_samples for row in rows)
        self.allocated += hours
        self.jobs += 1
        if util_samples:
            self.used += hours * sum(row.util_sum for row in rows) / util_samples / 100
        else:
            self.unmeasured += hours


def _accounted_hours(
    usage: Sequence[GpuUsage],
    allocations: Sequence[GpuAllocation],
    since: datetime,
    until: datetime,
    group_of: Callable[[HolderKey, GpuAllocation | None, Sequence[GpuUsage]], str | None],
) -> dict[str, _Hours]:
    """Hours per group: accounted jobs by their accounting, the other holders as sampled."""
    held = _by_holder(usage)
    groups: dict[str, _Hours] = defaultdict(_Hours)
    accounted: set[HolderKey] = set()
    for allocation in allocations:
        hours = allocation.hours_within(since, until)
        if hours <= 0:
            continue
        key = (allocation.backend, allocation.job_id)
        accounted.add(key)
        rows = held.get(key, [])
        if (group := group_of(key, allocation, rows)) is not None:
            groups[group].add(hours, rows)
    for key, rows in held.items():
        if key not in accounted and (group := group_of(key, None, rows)) is not None:
            groups[group].add(sum(row.hours for row in rows), rows)
    return groups


def accounted_figures(
    name: str,
    usage: Sequence[GpuUsage],
    allocations: Sequence[GpuAllocation],
    since: datetime,
    until: datetime,
) -> GroupFigures:
    """`group_figures` of every sampled GPU, with the allocated hours from accounting."""
    hours = _accounted_hours(usage, allocations, since, until, lambda *_: name).get(name, _Hours())
    return replace(
        group_figures(name, usage),
        allocated_gpu_hours=hours.allocated,
        used_gpu_hours=hours.used,
        unmeasured_gpu_hours=hours.unmeasured,
        allocated_from="accounting",
    )


def accounted_partitions(
    usage: Sequence[GpuUsage],
    allocations: Sequence[GpuAllocation],
    since: datetime,
    until: datetime,
    partition_of: dict[tuple[str, str], str],
) -> tuple[GroupFigures, ...]:
    def partition(key: HolderKey, allocation: GpuAllocation | None, _rows: Sequence[GpuUsage]) -> str | None:
        return (allocation.partition if allocation else None) or partition_of.get(key)

    held = _by_holder(usage)
    figures = []
    for name, hours in _accounted_hours(usage, allocations, since, until, partition).items():
        keys = {a_key for a_key, rows in held.items() if partition(a_key, None, rows) == name}
        keys |= {(a.backend, a.job_id) for a in allocations if a.partition == name}
        rows = [row for key in keys for row in held.get(key, [])]
        figures.append(
            replace(
                group_figures(name, rows),
                allocated_gpu_hours=hours.allocated,
                used_gpu_hours=hours.used,
                unmeasured_gpu_hours=hours.unmeasured,
                allocated_from="accounting",
            )
        )
    return _ranked(figures)


def accounted_users(
    usage: Sequence[GpuUsage],
    allocations: Sequence[GpuAllocation],
    since: datetime,
    until: datetime,
    limit: int,
) -> tuple[UserFigures, ...]:
    def owner(_key: HolderKey, allocation: GpuAllocation | None, rows: Sequence[GpuUsage]) -> str | None:
        if allocation is not None:
            return allocation.owner
        return next((row.holder.owner for row in rows if row.holder and row.holder.owner), None)

    held = _by_holder(usage)
    users = []
    for name, hours in _accounted_hours(usage, allocations, since, until, owner).items():
        rows = [row for key, mine in held.items() if owner(key, None, mine) == name for row in mine]
        users.append(
            UserFigures(
                owner=name,
                jobs=hours.jobs,
                gpu_hours=hours.allocated,
                used_gpu_hours=hours.used,
                mean_utilization_pct=group_figures(name, rows).mean_utilization_pct,
            )
        )
    users.sort(key=lambda user: (-user.gpu_hours, user.owner))
    return tuple(users[:limit])


def idle_jobs(
    usage: Sequence[GpuUsage], resolution: Resolution, thresholds: DigestThresholds
) -> tuple[IdleJob, ...]:
    held: dict[tuple[str, str], list[GpuUsage]] = defaultdict(list)
    for row in usage:
        if row.holder is not None:
            held[(row.holder.backend, row.holder.job_id)].append(row)
    found = []
    for (backend, job_id), rows in held.items():
        util_samples = sum(row.util_samples for row in rows)
        gpu_hours = sum(row.hours for row in rows)
        if not util_samples or gpu_hours < thresholds.min_held_gpu_hours:
            continue  # never measured, or not held long enough to judge
        mean = sum(row.util_sum for row in rows) / util_samples
        level = idle_level(mean, thresholds)
        if level is None:
            continue
        names = sorted({row.name for row in rows})
        found.append(
            IdleJob(
                backend=backend,
                job_id=job_id,
                owner=next((row.holder.owner for row in rows if row.holder and row.holder.owner), ""),
                gpus=len(names),
                gpu_names=tuple(names),
                models=tuple(sorted({row.model for row in rows if row.model})),
                gpu_hours=gpu_hours,
                mean_utilization_pct=mean,
                level=level,
                since=min(row.first_bucket for row in rows),
                last_seen=max(row.last_bucket for row in rows) + resolution.bucket,
            )
        )
    found.sort(key=lambda job: (job.mean_utilization_pct, -job.gpu_hours, job.backend, job.job_id))
    return tuple(found)


def top_users(usage: Sequence[GpuUsage], limit: int) -> tuple[UserFigures, ...]:
    rows_of: dict[str, list[GpuUsage]] = defaultdict(list)
    for row in usage:
        if row.holder is not None:
            rows_of[row.holder.owner].append(row)
    users = []
    for owner, rows in rows_of.items():
        figures = group_figures(owner, rows)
        jobs = {(row.holder.backend, row.holder.job_id) for row in rows if row.holder}
        users.append(
            UserFigures(
                owner=owner,
                jobs=len(jobs),
                gpu_hours=figures.allocated_gpu_hours,
                used_gpu_hours=figures.used_gpu_hours,
                mean_utilization_pct=figures.mean_utilization_pct,
            )
        )
    users.sort(key=lambda user: (-user.gpu_hours, user.owner))
    return tuple(users[:limit])


def queue_figures(jobs: Sequence[JobStatus], now: datetime) -> QueueFigures:
    pending = [job for job in jobs if job.state is JobState.PENDING]
    reasons = Counter(job.reason for job in pending if job.reason)
    ranked = tuple(sorted(reasons.items(), key=lambda item: (-item[1], item[0])))
    waiting = [job for job in pending if job.submitted_at is not None]
    longest = min(waiting, key=lambda job: (job.submitted_at, job.ref.job_id)) if waiting else None
    return QueueFigures(
        pending=len(pending),
        longest_wait=now - longest.submitted_at if longest and longest.submitted_at else None,
        longest_waiting_job=longest.ref.job_id if longest else None,
        longest_waiting_user=longest.user if longest else None,
        most_common_reason=ranked[0][0] if ranked else None,
        reasons=ranked,
    )


def unattributed(usage: Sequence[GpuUsage], thresholds: DigestThresholds) -> Unattributed:
    rows = [row for row in usage if row.holder is None]
    figures = group_figures("unattributed", rows)
    per_gpu: dict[str, list[GpuUsage]] = defaultdict(list)
    for row in rows:
        per_gpu[row.name].append(row)
    busy = []
    for name, mine in per_gpu.items():
        samples = sum(row.util_samples for row in mine)
        if samples and sum(row.util_sum for row in mine) / samples > thresholds.somewhat_low_pct:
            busy.append(name)
    return Unattributed(
        gpus=figures.gpus,
        gpu_hours=figures.gpu_hours,
        mean_utilization_pct=figures.mean_utilization_pct,
        busy_gpus=tuple(sorted(busy)),
    )


def _trend(since: datetime, until: datetime, now: GroupFigures, before: GroupFigures) -> Trend:
    change = None
    if now.mean_utilization_pct is not None and before.mean_utilization_pct is not None:
        change = now.mean_utilization_pct - before.mean_utilization_pct
    return Trend(
        since=since,
        until=until,
        gpus=before.gpus,
        mean_utilization_pct=before.mean_utilization_pct,
        allocated_gpu_hours=before.allocated_gpu_hours,
        used_gpu_hours=before.used_gpu_hours,
        utilization_change_points=change,
        allocated_gpu_hours_change=now.allocated_gpu_hours - before.allocated_gpu_hours,
        used_gpu_hours_change=now.used_gpu_hours - before.used_gpu_hours,
    )


def _ranked(groups: Iterable[GroupFigures]) -> tuple[GroupFigures, ...]:
    return tuple(sorted(groups, key=lambda group: (-group.gpu_hours, group.name)))
