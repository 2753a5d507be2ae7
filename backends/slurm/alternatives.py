"""What would start sooner than a waiting job, computed from the queue and the nodes' GRES.

All from data already fetched (one squeue, one sinfo), never a per-job query:
- another GPU type in the same partition, or another partition whose time limit fits, with enough
  free GPUs on enough nodes now — and, because the backfill plan reserves nodes for waiting jobs,
  with the longest time limit that ends before the plan gives those nodes away (`planned_start`);
- fewer GPUs of the same type that are free now (same caveat);
- a shorter time: when GPUs are free now but held for a higher-priority job that Slurm expects to
  start at T, a job that ends before T can start now (backfill) — so suggest a limit below T - now;
- for a partition time limit: the partitions whose maximum allows the asked time.
Only GPUs and time are weighed; CPUs and memory per node can still keep a suggestion from
starting, which is why every suggestion says "free now" rather than "will start".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from backends.durations_text import duration, plural
from backends.slurm.capacity import ClusterCapacity, largest_single_node_free, nodes_with_free
from backends.slurm.durations import describe_instant, format_time_limit
from backends.slurm.hostlist import expand_hostlist
from backends.slurm.json_formats import SlurmJob
from backends.types import GpuAsk, GpuPool, JobState

MAX_ALTERNATIVES = 5
TIMES = "\N{MULTIPLICATION SIGN}"
MIN_BACKFILL_MINUTES = 5


def describe_gpus(asks: Sequence[GpuAsk]) -> str:
    """`2 x a100` (with the multiplication sign) / `1 GPU` / `2 x a100 + 1 x l40s`, for sentences."""
    if not asks:
        return "no GPUs"
    return " + ".join(f"{a.count} {TIMES} {a.gpu_type}" if a.gpu_type else f"{a.count} GPU" for a in asks)


def gpu_ask(job: SlurmJob) -> tuple[int, str | None]:
    """GPUs per node and their type (None when untyped or mixed)."""
    per_node = sum(ask.count for ask in job.gpus)
    types = {ask.gpu_type for ask in job.gpus}
    return per_node, (types.pop() if len(types) == 1 else None)


def _matches_type(pool: GpuPool, gpu_type: str | None) -> bool:
    return gpu_type is None or (pool.gpu_type or "").lower() == gpu_type.lower()


def _id_order(job_id: str) -> tuple[int, ...]:
    """`123` and `123_4` as numbers, for Slurm's tie-break (job_scheduler.c sort_job_queue2)."""
    return tuple(int(part) if part.isdigit() else 0 for part in job_id.split("_"))


def jobs_ahead(job: SlurmJob, queue: Sequence[SlurmJob]) -> list[SlurmJob]:
    """Pending jobs in the same partition that Slurm will consider first: a higher priority, or the
    same priority and an earlier id (multifactor gives one person's jobs submitted together equal
    priorities; Slurm then serves them by increasing job id)."""
    if job.priority is None:
        return []
    mine = _id_order(job.job_id)
    return [
        other
        for other in queue
        if other.job_id != job.job_id
        and other.state is JobState.PENDING
        and other.partition == job.partition
        and other.priority is not None
        and (
            other.priority > job.priority
            or (other.priority == job.priority and _id_order(other.job_id) < mine)
        )
    ]


def _time_fits(capacity: ClusterCapacity, partition: str, minutes: int | None) -> bool:
    limit = capacity.partition_max_minutes.get(partition)
    return limit is None or minutes is None or minutes <= limit


def _nodes_by_partition(capacity: ClusterCapacity) -> dict[str, set[str]]:
    nodes: dict[str, set[str]] = {}
    for pool in capacity.pools:
        nodes.setdefault(pool.pool, set()).update(pool.nodes, pool.unavailable_nodes)
    return nodes


def planned_start(
    job: SlurmJob, queue: Sequence[SlurmJob], capacity: ClusterCapacity, pool: GpuPool
) -> datetime | None:
    """When Slurm's backfill plan gives `pool`'s nodes to another waiting job, were this job replaced.

    The plan reserves nodes for waiting jobs from their expected start, so GPUs that are free now
    are free for a newly submitted job only until then (verified on the local 22.05: a pending
    a100 job keeps a later l40s job waiting unless the l40s job ends before the a100 job's start).
    Squeue does not say which nodes a plan uses (22.05), so any waiting job of a partition that
    shares nodes with the pool counts: on a large cluster this errs on the side of "may wait".
    """
    nodes_of = _nodes_by_partition(capacity)
    pool_nodes = set(pool.nodes)

    def shares_nodes(other: SlurmJob) -> bool:
        return bool(pool_nodes & nodes_of.get(other.partition or "", set()))

    others = [
        other.expected_start
        for other in queue
        if other.job_id != job.job_id
        and other.state is JobState.PENDING
        and other.expected_start is not None
        and shares_nodes(other)
    ]
    if not others:
        return None  # replacing this job leaves nobody waiting for those nodes
    earliest = min(others)
    if job.expected_start is not None and shares_nodes(job) and job.expected_start < earliest:
        earliest = job.expected_start  # the others move up into this job's slot, no earlier
    return earliest


def _minutes_until(moment: datetime, now: datetime) -> int:
    return int((moment - now) / timedelta(minutes=1)) - 1  # a minute's margin for the next cycle


def _start_now_clause(
    job: SlurmJob, queue: Sequence[SlurmJob], capacity: ClusterCapacity, pool: GpuPool, now: datetime
) -> str | None:
    """What to add to a "free now" suggestion on `pool`: nothing when a job like this one would
    start now, a time-limit clause when only a shorter job would (the backfill window), None when
    the nodes are planned for waiting jobs too soon for the suggestion to help."""
    planned = planned_start(job, queue, capacity, pool)
    if planned is None:
        return ""
    window = _minutes_until(planned, now)
    if job.time_limit_minutes is not None and job.time_limit_minutes <= window:
        return ""
    if window < MIN_BACKFILL_MINUTES:
        return None
    return (
        f", with a time limit of at most {duration(minutes=window)} (--time={format_time_limit(window)}): "
        f"Slurm has planned waiting jobs on those nodes from {describe_instant(planned)}"
    )


def gpu_alternatives(
    job: SlurmJob, queue: Sequence[SlurmJob], capacity: ClusterCapacity, now: datetime
) -> list[str]:
    per_node, gpu_type = gpu_ask(job)
    if per_node == 0:
        return []
    nodes = job.node_count or 1
    suggestions: list[str] = []
    for pool in capacity.pools:
        if pool.pool == job.partition and _matches_type(pool, gpu_type):
            continue
        if not _time_fits(capacity, pool.pool, job.time_limit_minutes):
            continue
        if nodes_with_free(pool, per_node) < nodes:
            continue
        clause = _start_now_clause(job, queue, capacity, pool, now)
        if clause is None:
            continue
        kind = pool.gpu_type or "GPU"
        free = (
            f"{pool.free} {TIMES} {kind} {plural(pool.free, 'is', 'are')} free now on partition {pool.pool}"
        )
        if pool.pool == job.partition:
            suggestions.append(f"{free}: ask for {kind} instead{clause}")
        elif _matches_type(pool, gpu_type):
            suggestions.append(f"{free}: ask for partition {pool.pool}{clause}")
        else:
            suggestions.append(f"{free}: ask for {kind} on partition {pool.pool}{clause}")
    for pool in capacity.pools_in(job.partition or ""):
        if not _matches_type(pool, gpu_type) or nodes > 1:
            continue
        most = largest_single_node_free(pool)
        if 0 < most < per_node:
            clause = _start_now_clause(job, queue, capacity, pool, now)
            if clause is None:
                continue
            kind = pool.gpu_type or "GPU"
            suggestions.append(
                f"{most} {TIMES} {kind} {plural(most, 'is', 'are')} free now on partition {pool.pool}: "
                f"ask for {most} instead of {per_node}{clause}"
            )
    return suggestions


def backfill_alternative(
    job: SlurmJob, queue: Sequence[SlurmJob], capacity: ClusterCapacity, now: datetime
) -> str | None:
    """A time limit short enough to run in the gap before a higher-priority job's expected start."""
    per_node, gpu_type = gpu_ask(job)
    if per_node == 0 or job.time_limit_minutes is None:
        return None
    pools = [p for p in capacity.pools_in(job.partition or "") if _matches_type(p, gpu_type)]
    if not any(nodes_with_free(p, per_node) >= (job.node_count or 1) for p in pools):
        return None
    starts = [
        (other.expected_start, other)
        for other in jobs_ahead(job, queue)
        if other.expected_start is not None and other.expected_start > now
    ]
    if not starts:
        return None
    first_start, first_job = min(starts, key=lambda pair: pair[0])
    window = int((first_start - now) / timedelta(minutes=1)) - 1
    if window < MIN_BACKFILL_MINUTES or window >= job.time_limit_minutes:
        return None
    kind = gpu_type or "GPU"
    return (
        f"{per_node} {TIMES} {kind} {plural(per_node, 'is', 'are')} free now but held for job "
        f"{first_job.job_id}, expected to start at {describe_instant(first_start)}: with a time limit "
        f"of at most {duration(minutes=window)} (--time={format_time_limit(window)}) the job could "
        "start now in that gap"
    )


def time_limit_alternatives(job: SlurmJob, capacity: ClusterCapacity) -> list[str]:
    asked = job.time_limit_minutes
    suggestions: list[str] = []
    for partition in capacity.partition_order:
        if partition == job.partition:
            continue
        limit = capacity.partition_max_minutes.get(partition)
        if asked is not None and limit is not None and asked > limit:
            continue
        allows = "has no time limit" if limit is None else f"allows up to {duration(minutes=limit)}"
        gpus_there = [p for p in capacity.pools_in(partition) if p.total]
        if job.gpus and not gpus_there:
            continue
        suggestions.append(f"partition {partition} {allows}: ask for partition {partition}")
    current = capacity.partition_max_minutes.get(job.partition or "")
    if current is not None:
        suggestions.append(
            f"or ask for at most {duration(minutes=current)} (--time={format_time_limit(current)}) "
            f"to stay on partition {job.partition}"
        )
    return suggestions


def gpus_released_by(
    job: SlurmJob, queue: Sequence[SlurmJob], capacity: ClusterCapacity
) -> tuple[datetime, list[str]] | None:
    """When running jobs' time limits release enough GPUs of the asked type (latest case)."""
    per_node, gpu_type = gpu_ask(job)
    if per_node == 0:
        return None
    pools = [p for p in capacity.pools_in(job.partition or "") if _matches_type(p, gpu_type)]
    free_now = max((largest_single_node_free(p) for p in pools), default=0)
    needed = per_node - free_now
    if needed <= 0:
        return None
    holders = sorted(
        (
            other
            for other in queue
            if other.state is JobState.RUNNING
            and other.end_time is not None
            and any(_matches_type_ask(ask, gpu_type) for ask in other.gpus)
            and _shares_nodes(other, pools)
        ),
        key=lambda other: other.end_time or datetime.max,
    )
    released = 0
    ids: list[str] = []
    for other in holders:
        released += sum(ask.count for ask in other.gpus if _matches_type_ask(ask, gpu_type))
        ids.append(other.job_id)
        if released >= needed and other.end_time is not None:
            return other.end_time, ids
    return None


def _matches_type_ask(ask: GpuAsk, gpu_type: str | None) -> bool:
    return gpu_type is None or (ask.gpu_type or "").lower() == gpu_type.lower()


def _shares_nodes(other: SlurmJob, pools: Sequence[GpuPool]) -> bool:
    nodes = {node for pool in pools for node in pool.nodes}
    return bool(nodes.intersection(expand_hostlist(other.node_list)))


def dedupe(suggestions: Sequence[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for suggestion in suggestions:
        if suggestion not in seen:
            seen.append(suggestion)
    return tuple(seen[:MAX_ALTERNATIVES])
