"""Reading Slurm's GPU limits for a pending job (`why`) or a request not yet submitted (the preview).

One `scontrol -o show assoc_mgr` per question (FIELD_NOTES: keep controller calls to the minimum);
the queue the backend already read names the jobs that hold the GPUs. A preview may add one
`sacctmgr show qos` (to slurmdbd, not the controller) when assoc_mgr cannot show the QOS's per-user
limit yet (nobody has run a job in it). assoc_mgr does not print an association's default QOS, so
a request that names none is checked against `normal`, Slurm's default. Over
slurmrestd there is no association-manager view in the slurm/v0.0.3x API: the reading says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.cluster_limits import ClusterGpuLimit, ClusterLimits
from backends.errors import BackendUnavailable, ConciergeError
from backends.slurm.explanations import LimitReading
from backends.slurm.json_formats import SlurmJob
from backends.slurm.limit_checks import Ask, check_for_reason, held_by, limit_checks
from backends.slurm.limits import (
    AssocMgr,
    assoc_mgr_argv,
    lacks_list_limits,
    parse_assoc_mgr,
    sacctmgr_qos_argv,
    with_qos_definitions,
)
from backends.slurm.runner import CommandRunner
from backends.types import Footprint

DEFAULT_QOS = "normal"  # what Slurm gives a job that names none, unless its association sets another
NO_ACCOUNTING = (
    "Slurm keeps no association or QOS records here (no accounting through slurmdbd), so it "
    "enforces no QOS or account GPU limits"
)


def _read(runner: CommandRunner, *, user: str | None, qos: str | None) -> AssocMgr:
    return parse_assoc_mgr(runner.run(assoc_mgr_argv(user=user, qos=qos)))


def job_ask(job: SlurmJob) -> Ask:
    per_node = sum(ask.count for ask in job.gpus)
    return Ask(
        user=job.user,
        account=job.account,
        qos=job.qos,
        partition=job.partition,
        gpus=per_node * (job.node_count or 1),
        gpus_per_node=per_node,
        job_id=job.job_id,
    )


def read_job_limit(runner: CommandRunner, job: SlurmJob, queue: Sequence[SlurmJob]) -> LimitReading:
    """The limit behind a pending job's GPU-limit reason, with the use now and who holds it."""
    try:
        mgr = _read(runner, user=job.user, qos=job.qos)
    except BackendUnavailable as e:
        return LimitReading(None, f"the association manager could not be read ({e.message})")
    except ConciergeError as e:
        return LimitReading(None, f"scontrol show assoc_mgr failed ({e.message})")
    if mgr.empty:
        return LimitReading(None, NO_ACCOUNTING)
    found = check_for_reason(job.reason or "", limit_checks(job_ask(job), mgr, queue))
    if found is None:
        return LimitReading(
            None,
            f"Slurm's association manager shows no GPU limit behind {job.reason} for QOS "
            f"{job.qos or '(default)'} and account {job.account or '(default)'}; `sacctmgr show qos` "
            "and `sacctmgr show assoc` on the cluster list the limits",
        )
    return LimitReading(found)


def read_request_limits(runner: CommandRunner, footprint: Footprint, user: str) -> ClusterLimits:
    """Every GPU limit a request of `user` would meet, with the use Slurm counts now."""
    request = footprint.request
    try:
        mgr = _read(runner, user=user, qos=request.qos)
    except ConciergeError as e:
        return ClusterLimits(note=f"Slurm's own GPU limits could not be read ({e.message})")
    if mgr.empty:
        return ClusterLimits()  # no accounting: Slurm enforces no such limits, nothing to say
    qos = request.qos or DEFAULT_QOS
    if lacks_list_limits(mgr, qos):
        try:
            mgr = with_qos_definitions(mgr, runner.run(sacctmgr_qos_argv(qos)))
        except ConciergeError as e:
            return ClusterLimits(note=f"QOS {qos}'s per-user limits could not be read ({e.message})")
    ask = Ask(
        user=user,
        account=request.account,
        qos=request.qos,
        partition=request.partition,
        gpus=footprint.total_gpus,
        gpus_per_node=footprint.gpus_per_unit,
    )
    checks = limit_checks(ask, mgr)
    return ClusterLimits(
        limits=tuple(
            ClusterGpuLimit(
                words=check.words,
                limit=check.limit,
                in_use=check.used,
                asked=check.asked,
                held_by=held_by(check, user),
            )
            for check in checks
        )
    )
