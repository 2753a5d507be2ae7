"""One job's situation as `PendingReason`s: the sentence, the estimate, the alternatives.

Pure: the backend fetches the queue (always), the nodes (only for reasons that alternatives can
help with) and the association manager (only for GPU-limit reasons), then calls `explain_job`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from backends.durations_text import duration
from backends.slurm.alternatives import (
    backfill_alternative,
    dedupe,
    describe_gpus,
    gpu_alternatives,
    gpus_released_by,
    jobs_ahead,
    time_limit_alternatives,
)
from backends.slurm.capacity import ClusterCapacity
from backends.slurm.durations import describe_instant
from backends.slurm.json_formats import SlurmJob
from backends.slurm.limit_checks import LIMIT_REASONS, LimitCheck, describe_check
from backends.slurm.reasons import ReasonContext, describe_reason
from backends.types import JobState, PendingCode, PendingReason

# Reasons where the nodes' free GPUs and partition limits give useful alternatives.
NEEDS_CAPACITY = frozenset(
    {
        "Resources",
        "Priority",
        "None",
        "ReqNodeNotAvail",
        "NodeDown",
        "PartitionTimeLimit",
        "PartitionDown",
        "PartitionInactive",
        "BadConstraints",
    }
)
NEEDS_LIMITS = LIMIT_REASONS

_DEPENDENCY = re.compile(r"(?P<kind>after\w*|singleton):?(?P<ids>[\d:_+]*)(?:\((?P<status>\w+)\))?")
_DEPENDENCY_WORDS = {
    "after": "to start",
    "afterany": "to end",
    "afterok": "to finish successfully",
    "afternotok": "to fail",
    "aftercorr": "(the matching array task) to finish successfully",
    "afterburstbuffer": "to finish and stage out its burst buffer",
}
_UNAVAILABLE_NODES = re.compile(r"UnavailableNodes:(?P<nodes>\S+)")


@dataclass(frozen=True)
class LimitReading:
    """The limit behind a reason with its current use (None: not readable, and `note` says why)."""

    limit: LimitCheck | None
    note: str | None = None


def describe_dependency(text: str | None) -> str:
    if not text:
        return "another job"
    described: list[str] = []
    for match in _DEPENDENCY.finditer(text):
        kind = match["kind"]
        if kind == "singleton":
            described.append("the other jobs of the same name and user to end (singleton)")
            continue
        ids = [part.split("+")[0] for part in match["ids"].split(":") if part]
        jobs = " and ".join(f"job {i}" for i in ids) or "another job"
        described.append(f"{jobs} {_DEPENDENCY_WORDS.get(kind, 'to reach ' + kind)}")
    return " and ".join(described) + f" ({text})" if described else text


def _context(job: SlurmJob, capacity: ClusterCapacity | None) -> ReasonContext:
    partition_max = None
    if capacity is not None and job.partition:
        partition_max = capacity.partition_max_minutes.get(job.partition)
    unavailable = _UNAVAILABLE_NODES.search(job.reason_detail or "")
    return ReasonContext(
        job=job.job_id,
        gpus=describe_gpus(job.gpus) + " GPUs" if job.gpus else "the CPUs and memory it asks for",
        partition=job.partition or "its partition",
        time_limit=duration(minutes=job.time_limit_minutes) if job.time_limit_minutes else "its time",
        partition_max_time=duration(minutes=partition_max) if partition_max else "the partition's maximum",
        nodes=f"{job.node_count} nodes" if job.node_count else "its nodes",
        unavailable_nodes=f": {unavailable['nodes']}" if unavailable else "",
        dependency=describe_dependency(job.dependency),
        begin_time=describe_instant(job.start_time) if job.start_time else "a later time",
        qos=job.qos or "(default)",
        account=job.account or "(default)",
    )


def _not_pending(job: SlurmJob, now: datetime) -> PendingReason:
    where = f" on {job.node_list}" if job.node_list else ""
    if job.state is JobState.RUNNING:
        since = f" since {describe_instant(job.start_time)}" if job.start_time else ""
        elapsed = job.elapsed_seconds(now)
        limit = f" of its {duration(minutes=job.time_limit_minutes)} limit" if job.time_limit_minutes else ""
        spent = f" ({duration(seconds=elapsed)} elapsed{limit})" if elapsed is not None else ""
        sentence = f"Job {job.job_id} is not pending: it is running{since}{where}{spent}."
    elif job.state is JobState.SUSPENDED:
        sentence = f"Job {job.job_id} is not pending: it is suspended{where}; it resumes when Slurm lets it."
    elif job.state is JobState.COMPLETING:
        sentence = f"Job {job.job_id} is not pending: it has ended and Slurm is cleaning up{where}."
    else:
        ended = f" at {describe_instant(job.end_time)}" if job.end_time else ""
        sentence = f"Job {job.job_id} is not pending: it has ended ({job.raw_state}){ended}."
    return PendingReason(code=PendingCode.NOT_PENDING, raw=job.raw_state, sentence=sentence)


def _limit_sentence(job: SlurmJob, reading: LimitReading | None) -> str:
    if reading is None:
        return ""
    if reading.limit is None:
        return f" The limit and current use could not be read: {reading.note or 'Slurm did not report it'}."
    sentence = describe_check(reading.limit, job.user)
    return f" {sentence[0].upper()}{sentence[1:]}."


def explain_job(
    job: SlurmJob,
    queue: Sequence[SlurmJob],
    now: datetime,
    *,
    capacity: ClusterCapacity | None = None,
    limit: LimitReading | None = None,
    priority: str | None = None,
) -> list[PendingReason]:
    """`priority`: the sentence on the job's priority factors (sprio), for a Priority-pending job."""
    if job.state is not JobState.PENDING:
        return [_not_pending(job, now)]
    reason = job.reason or "None"
    code, sentence = describe_reason(reason, _context(job, capacity))
    alternatives: list[str] = []
    if code in (PendingCode.INSUFFICIENT_GPU, PendingCode.PRIORITY, PendingCode.NOT_YET_CONSIDERED):
        ahead = jobs_ahead(job, queue)
        if ahead:
            count = len(ahead)
            sentence += (
                f" {count} pending {'job has' if count == 1 else 'jobs have'} a higher priority in "
                f"partition {job.partition} and will be considered first."
            )
        elif code is PendingCode.INSUFFICIENT_GPU:
            sentence += " No pending job is ahead of it."
        if priority and reason == "Priority":
            sentence += f" {priority}"
        if job.expected_start is not None:
            sentence += (
                f" Slurm expects it to start at {describe_instant(job.expected_start)} (the backfill "
                "scheduler's estimate; earlier if running jobs end early)."
            )
        else:
            sentence += " Slurm has no start estimate for it yet."
        if capacity is not None:
            released = gpus_released_by(job, queue, capacity) if not ahead else None
            if released is not None:
                when, holders = released
                whose = "its time limit" if len(holders) == 1 else "their time limits"
                sentence += (
                    f" The GPUs it needs are held by job {', '.join(holders)} until "
                    f"{describe_instant(when)} at the latest ({whose})."
                )
            alternatives += gpu_alternatives(job, queue, capacity, now)
            backfill = backfill_alternative(job, queue, capacity, now)
            if backfill:
                alternatives.append(backfill)
    elif code is PendingCode.TIME_LIMIT and capacity is not None and reason == "PartitionTimeLimit":
        alternatives += time_limit_alternatives(job, capacity)
    elif capacity is not None and code in (
        PendingCode.NODES_UNAVAILABLE,
        PendingCode.PARTITION_DOWN,
        PendingCode.OTHER,
    ):
        alternatives += gpu_alternatives(job, queue, capacity, now)
    if reason in NEEDS_LIMITS:
        if limit is not None and limit.limit is not None and limit.limit.never_fits:
            sentence = f"Job {job.job_id} will never start as it is."  # the job alone is over the limit
        sentence += _limit_sentence(job, limit)
        if limit is not None and limit.limit is not None and 0 < limit.limit.room < limit.limit.asked:
            room = limit.limit.room
            alternatives.append(
                f"{room} {'GPU fits' if room == 1 else 'GPUs fit'} that limit now: cancel this job and "
                f"ask for {room}"
            )
    return [
        PendingReason(
            code=code,
            raw=job.reason_detail or reason,
            sentence=sentence,
            alternatives=dedupe(alternatives),
            expected_start=job.expected_start,
        )
    ]
