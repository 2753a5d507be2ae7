"""What a scheduler's accounting says about jobs that left its queue (Slurm: slurmdbd via `sacct`).

A backend that keeps accounting offers `ended_jobs`; the tracker asks it once per pass for the jobs
the queue listing no longer has, and for the jobs that ended in it (for what only accounting has:
GPU-hours). A job is `vanished` only when neither the queue nor accounting knows it. While
accounting cannot be asked (slurmdbd down), the jobs it would answer for stay as they were and are
asked about again next pass: nothing vanishes because a daemon restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from backends.types import JobRef, JobStatus

ACCOUNTING_UNAVAILABLE = "the cluster's job accounting (slurmdbd) is unavailable"


@dataclass(frozen=True)
class EndedJobs:
    statuses: tuple[JobStatus, ...] = ()  # what accounting knows of the jobs asked about
    # Why accounting could not be asked this time (None when it answered, or when the cluster keeps
    # no accounting at all, so that nothing more will ever be known of a job that left the queue).
    unavailable: str | None = None


@runtime_checkable
class KeepsAccounting(Protocol):
    def ended_jobs(self, refs: Sequence[JobRef]) -> EndedJobs:
        """One accounting query for all of `refs`; jobs it does not know are left out."""
        ...
