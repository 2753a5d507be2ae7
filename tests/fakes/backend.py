"""The one fake cluster every test and bench/slack_ack.py pass to the engine in place of Slurm.

It keeps what a cluster would: the plans it was given (`submitted`, listed back by `queue` as
pending, since the engine reads the person's usage from the cluster), whose job is whose (`cancel`
refuses anyone else, as Slurm does), jobs a test puts in its queue (`jobs`) and the states a test
sets (`states`). Each call can be slowed (`delays`), made to fail (`errors`) or held at a `gate`
until the test opens it, so a test can prove the answer came before the slow work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from backends.errors import PermissionDenied
from backends.types import (
    Footprint,
    GpuAsk,
    GpuPool,
    Identity,
    JobRef,
    JobState,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)

CLUSTER_CALLS = ("plan", "validate", "submit", "statuses", "queue", "explain", "capacity", "cancel")
GATE_WAIT_S = 10.0
ONE_POOL = (GpuPool(backend="slurm", pool="gpu", gpu_type="a100", total=8, allocated=3),)
# a100 free 5 of 12 over two partitions, h100 7 of 8.
THREE_POOLS = (
    *ONE_POOL,
    GpuPool(backend="slurm", pool="big", gpu_type="a100", total=4, allocated=4),
    GpuPool(backend="slurm", pool="big", gpu_type="h100", total=8, allocated=1),
)

Planner = Callable[[Footprint, Identity, str], Plan]


def sbatch_plan(footprint: Footprint, identity: Identity, request_id: str) -> Plan:
    """A plan with a two-line script: what the doors show, without the real renderer's settings."""
    script = f"#!/bin/bash\n#SBATCH --gres=gpu:{footprint.gpus_per_unit}\n{footprint.request.command}\n"
    return Plan(
        backend="slurm", request_id=request_id, footprint=footprint, identity=identity, sbatch_script=script
    )


class FakeBackend:
    """A cluster in memory; see the module's docstring. Job ids count up from `first_job_id`."""

    def __init__(
        self,
        name: Target = "slurm",
        *,
        planner: Planner = sbatch_plan,
        pools: Iterable[GpuPool] = ONE_POOL,
        owners: Mapping[str, str] = {},
        first_job_id: int = 501,
        delays: Mapping[str, float] = {},
        errors: Mapping[str, Exception] = {},
    ) -> None:
        self.name: Target = name
        self.planner = planner
        self.pools = list(pools)
        self.owners = dict(owners)
        self.first_job_id = first_job_id
        self.delays = dict(delays)
        self.errors = dict(errors)  # a call's name → what it raises, until the test removes it
        self.gate: threading.Event | None = None  # when set, plan and submit wait for it
        self.submitted: list[Plan] = []
        self.cancelled: list[str] = []
        self.cancelled_as: list[Identity] = []
        self.jobs: list[JobStatus] = []
        self.states: dict[str, tuple[JobState, str | None]] = {}
        self._lock = threading.Lock()

    def _call(self, name: str) -> None:
        time.sleep(self.delays.get(name, 0.0))
        if name in ("plan", "submit") and self.gate is not None and not self.gate.wait(GATE_WAIT_S):
            raise TimeoutError("the test never opened the backend's gate")
        if (error := self.errors.get(name)) is not None:
            raise error

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        self._call("plan")
        return self.planner(footprint, identity, request_id)

    def validate(self, plan: Plan) -> list[str]:
        self._call("validate")
        return []

    def submit(self, plan: Plan) -> JobRef:
        self._call("submit")
        with self._lock:
            job_id = str(self.first_job_id + len(self.submitted))
            self.submitted.append(plan)
            self.owners[job_id] = plan.identity.unix_user or ""
        return JobRef(backend=self.name, job_id=job_id)

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        self._call("statuses")
        return [
            JobStatus(ref=r, name="job", user="alice", state=s, raw_state=s.value.upper(), reason=why)
            for r in refs
            if r.job_id in self.states
            for s, why in [self.states[r.job_id]]
        ]

    def queue(self, filter: QueueFilter) -> list[JobStatus]:
        """The test's jobs, then what it submitted, pending, as a cluster would list them."""
        self._call("queue")
        submitted = [
            JobStatus(
                ref=JobRef(backend=self.name, job_id=str(self.first_job_id + number)),
                name="job",
                user=plan.identity.unix_user or "",
                state=JobState.PENDING,
                raw_state="PENDING",
                gpus=(GpuAsk(count=plan.footprint.gpus_per_unit),),
                nodes=plan.footprint.units,
                request_id=plan.request_id,
            )
            for number, plan in enumerate(self.submitted)
        ]
        return [job for job in self.jobs + submitted if filter.user in (None, job.user)]

    def explain(self, ref: JobRef) -> list[PendingReason]:
        self._call("explain")
        return []

    def capacity(self) -> list[GpuPool]:
        self._call("capacity")
        return list(self.pools)

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        self._call("cancel")
        owner = self.owners.get(ref.job_id)
        if owner != identity.unix_user:
            raise PermissionDenied(
                f"job {ref.job_id} belongs to {owner}; only its owner or an admin may cancel it"
            )
        self.cancelled.append(ref.job_id)
        self.cancelled_as.append(identity)
