"""GPU allocations from the scheduler's accounting (Slurm: sacct), for the digest's allocated GPU-hours.

Samples (NVML/DCGM every poll) miss a job that starts and ends between two polls, and count a
job's hours only to the poll's resolution; the scheduler's accounting records every allocation
with its start, end and GPUs. As Princeton's jobstats does, the hours come from accounting and the
utilisation from the samples, matched by job id. Neutral data: the telemetry reads it through
`AllocationAccounting` without knowing which scheduler answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class GpuAllocation:
    backend: str  # "slurm"
    job_id: str  # as the samples' holders name it (Slurm's raw job id)
    owner: str
    account: str | None
    partition: str | None
    gpus: int
    start: datetime
    end: datetime | None  # None: still running
    read_at: datetime | None = None  # when accounting was asked: a running job has held its GPUs until then

    def hours_within(self, since: datetime, until: datetime) -> float:
        """GPU-hours this allocation held inside `[since, until)`; a running one counts up to when it
        was read (a period that ends in the future counts no future hours)."""
        begin = max(self.start, since)
        finish = min(self.end or self.read_at or until, until)
        seconds = (finish - begin).total_seconds()
        return self.gpus * seconds / 3600 if seconds > 0 else 0.0


@runtime_checkable
class AllocationAccounting(Protocol):
    def gpu_allocations(self, since: datetime, until: datetime) -> Sequence[GpuAllocation]:
        """Every allocation with GPUs that overlapped `[since, until)`, in one accounting query.
        Raises BackendUnavailable when the scheduler keeps no accounting (or it cannot be reached)."""
        ...
