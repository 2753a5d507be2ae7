"""What a person holds now, for judging their GPU limit: the cluster's truth plus what is in flight.

The cluster is read once (the same queue listing the tracker and `concierge queue` use), so jobs
the person submitted with plain sbatch or kubectl count too, and a job that ended counts no more
whether or not a tracker has run. The store adds what the cluster cannot show yet:
- requests `submitting` (admitted, the cluster being asked) count unless the listing already shows
  their job (found by the request id the job carries: sbatch returned, the store not yet told);
- a submitted job absent from the listing counts only if the store recorded it after the listing
  was read (it may not have been there yet); older ones have ended and were forgotten.
Jobs of another backend than the one read count as the store knows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from backends.cluster_limits import ClusterGpuLimit
from backends.types import JobStatus, Target
from bot.store.store import InFlight
from policies import Usage


@dataclass(frozen=True)
class ClusterHoldings:
    backend: Target
    jobs: tuple[JobStatus, ...]  # the person's jobs that have not ended
    read_at: datetime  # when the listing was asked for

    @property
    def job_ids(self) -> frozenset[str]:
        return frozenset(job.ref.job_id for job in self.jobs)

    @property
    def request_ids(self) -> frozenset[str]:
        return frozenset(job.request_id for job in self.jobs if job.request_id is not None)


def holdings_from(backend: Target, listing: Sequence[JobStatus], read_at: datetime) -> ClusterHoldings:
    return ClusterHoldings(backend, tuple(job for job in listing if not job.state.is_final), read_at)


def usage_of(
    cluster: ClusterHoldings | None,
    in_flight: Sequence[InFlight],
    limits: tuple[ClusterGpuLimit, ...] = (),
) -> Usage:
    """The person's GPUs in use and jobs active, with the cluster's own GPU limits the request meets;
    `cluster` None when the cluster could not be read (then everything the store has in flight counts)."""
    gpus = sum(job.held_gpus for job in cluster.jobs) if cluster else 0
    jobs = len(cluster.jobs) if cluster else 0
    seen = cluster.job_ids if cluster else frozenset()
    tagged = cluster.request_ids if cluster else frozenset()
    for request in in_flight:
        if cluster is None or request.backend != cluster.backend:
            pass  # the listing cannot show it: counted as the store has it
        elif request.request_id in tagged:
            continue  # its job is in the listing, whatever the store says yet
        elif request.submitting:
            pass  # the cluster is being asked: counted as the store has it
        elif request.job_id in seen or request.since < cluster.read_at:
            continue  # counted from the cluster, or ended before the listing
        gpus += request.gpus
        jobs += 1
    return Usage(gpus_in_use=gpus, jobs_active=jobs, cluster_limits=limits)
