"""The `Backend` protocol: what every cluster adapter (Slurm, Kubernetes) offers the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from backends.types import (
    Footprint,
    GpuPool,
    Identity,
    JobRef,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)


class Backend(Protocol):
    name: Target

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        """The script or manifests that would run, as the person, rendered from the footprint (the
        one place a job's GPUs, nodes/replicas and wall time are decided). No cluster writes."""
        ...

    def validate(self, plan: Plan) -> list[str]:
        """Ask the cluster whether it would accept the plan (sbatch --test-only, server dry run).

        Returns warnings; raises BackendRejected when the cluster says no."""
        ...

    def submit(self, plan: Plan) -> JobRef: ...

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        """Status of many jobs in one cluster call; jobs the cluster no longer knows are left out."""
        ...

    def queue(self, filter: QueueFilter) -> list[JobStatus]: ...

    def explain(self, ref: JobRef) -> list[PendingReason]: ...

    def capacity(self) -> list[GpuPool]: ...

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        """Cancel as the person; raises PermissionDenied when it is not theirs (and not an admin)."""
        ...


@runtime_checkable
class Scalable(Protocol):
    """A backend whose workloads can change size while running (Kubernetes services)."""

    def scale(self, ref: JobRef, replicas: int, identity: Identity) -> None: ...
