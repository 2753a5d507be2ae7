"""Slurm's pending-reason codes in plain words: what happened, why, and what to do.

Codes come from the JSON `state_reason` field (squeue's `%r`), never from `%R` free text, and
follow squeue(1) "JOB REASON CODES" and job_reason_codes.html. Every code that FIELD_NOTES.md
lists has an entry here (a unit test checks it); a code we do not know yet becomes `OTHER` with
Slurm's word quoted, so a new Slurm version degrades to honest text instead of a crash.

A sentence is a template over `ReasonContext`, whose fields all have readable defaults, so a
sentence never shows a blank when squeue left a field empty. Alternatives (other GPU types,
partitions, shorter times) are computed elsewhere (`alternatives.py`), from the cluster's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from backends.types import PendingCode


@dataclass(frozen=True)
class ReasonContext:
    job: str
    gpus: str = "the GPUs it asks for"
    partition: str = "its partition"
    time_limit: str = "its time limit"
    partition_max_time: str = "the partition's maximum"
    nodes: str = "the nodes it asks for"
    unavailable_nodes: str = ""
    dependency: str = "another job"
    begin_time: str = "a later time"
    qos: str = "its QOS"
    account: str = "its account"
    reservation: str = "its reservation"


@dataclass(frozen=True)
class ReasonEntry:
    code: PendingCode
    template: str
    never_starts_as_is: bool = False  # the job will not start unless something is changed


_HOLD_RELEASE = "release it with `scontrol release {job}` when it should run, or cancel it."

REASONS: Mapping[str, ReasonEntry] = {
    "Resources": ReasonEntry(
        PendingCode.INSUFFICIENT_GPU,
        "Job {job} is waiting for resources: {gpus} in partition {partition} are all in use "
        "right now. It starts as soon as enough are free.",
    ),
    "Priority": ReasonEntry(
        PendingCode.PRIORITY,
        "Job {job} is waiting its turn: jobs with a higher priority in partition {partition} "
        "are queued ahead of it and will be served first.",
    ),
    "Dependency": ReasonEntry(
        PendingCode.DEPENDENCY,
        "Job {job} waits for {dependency} to finish first; Slurm gives no start estimate until "
        "that dependency is satisfied.",
    ),
    "DependencyNeverSatisfied": ReasonEntry(
        PendingCode.DEPENDENCY_NEVER,
        "Job {job} can never start: the job it depends on ({dependency}) ended in a way that does "
        "not satisfy the dependency (for example it failed or was cancelled). Cancel it and "
        "submit again without that dependency.",
        never_starts_as_is=True,
    ),
    "BeginTime": ReasonEntry(
        PendingCode.BEGIN_TIME,
        "Job {job} was asked not to start before {begin_time}; it becomes eligible then.",
    ),
    "QOSMaxGRESPerUser": ReasonEntry(
        PendingCode.QOS_GPU_LIMIT,
        "Job {job} waits because your running jobs already use as many GPUs as QOS {qos} allows "
        "one user. It starts when enough of your GPUs are released; ask for fewer GPUs, or cancel "
        "one of your running jobs, to start sooner.",
    ),
    "QOSMaxGRESPerJob": ReasonEntry(
        PendingCode.QOS_GPU_LIMIT,
        "Job {job} asks for more GPUs ({gpus}) than QOS {qos} allows in a single job, so it will "
        "not start as it is. Cancel it and submit again with fewer GPUs (or another QOS).",
        never_starts_as_is=True,
    ),
    "AssocGrpGRES": ReasonEntry(
        PendingCode.ACCOUNT_GPU_LIMIT,
        "Job {job} waits because the jobs of account {account} together already use the GPUs the "
        "account may use at once. It starts when the account's running jobs release GPUs; ask "
        "your group, or charge another account.",
    ),
    "QOSGrpGRES": ReasonEntry(
        PendingCode.QOS_GPU_LIMIT,
        "Job {job} waits because all jobs in QOS {qos} together already use the GPUs that QOS "
        "allows at once. It starts when some of them finish; another QOS may start sooner.",
    ),
    "MaxGRESPerAccount": ReasonEntry(
        PendingCode.ACCOUNT_GPU_LIMIT,
        "Job {job} waits because the jobs of account {account} already use as many GPUs as QOS "
        "{qos} allows one account. It starts when the account's jobs release GPUs.",
    ),
    "ReqNodeNotAvail": ReasonEntry(
        PendingCode.NODES_UNAVAILABLE,
        "Job {job} needs nodes that are not available right now (down, drained or reserved"
        "{unavailable_nodes}). It starts when they return, or sooner if you do not ask for "
        "specific nodes.",
    ),
    "PartitionTimeLimit": ReasonEntry(
        PendingCode.TIME_LIMIT,
        "Job {job} asks for {time_limit} but partition {partition} allows at most "
        "{partition_max_time}, so it will not start there as it is. Ask for a shorter time or "
        "another partition.",
        never_starts_as_is=True,
    ),
    "PartitionNodeLimit": ReasonEntry(
        PendingCode.NODE_LIMIT,
        "Job {job} asks for {nodes}, more (or fewer) than partition {partition} allows per job, so "
        "it will not start there as it is. Ask for a node count the partition accepts.",
        never_starts_as_is=True,
    ),
    "PartitionDown": ReasonEntry(
        PendingCode.PARTITION_DOWN,
        "Job {job} waits because partition {partition} is down (closed by the administrators). "
        "It starts when the partition is up again; another partition may run it sooner.",
    ),
    "PartitionInactive": ReasonEntry(
        PendingCode.PARTITION_DOWN,
        "Job {job} waits because partition {partition} is inactive and starts no jobs. Another "
        "partition may run it sooner.",
    ),
    "JobHeldUser": ReasonEntry(
        PendingCode.HELD,
        "Job {job} is on hold by its owner, so Slurm will not start it; " + _HOLD_RELEASE,
    ),
    "JobHeldAdmin": ReasonEntry(
        PendingCode.HELD,
        "Job {job} is on hold by an administrator, so Slurm will not start it; ask the cluster "
        "administrators why and to release it, or cancel it.",
    ),
    "InvalidQOS": ReasonEntry(
        PendingCode.INVALID_QOS,
        "Job {job} names QOS {qos}, which is not valid for you, so it will not start. Cancel it "
        "and submit again with a QOS you may use (or none for the default).",
        never_starts_as_is=True,
    ),
    "QOSNotAllowed": ReasonEntry(
        PendingCode.INVALID_QOS,
        "Job {job} uses QOS {qos}, which your account or partition {partition} does not allow, so "
        "it will not start. Submit again with an allowed QOS or partition.",
        never_starts_as_is=True,
    ),
    "InvalidAccount": ReasonEntry(
        PendingCode.INVALID_ACCOUNT,
        "Job {job} is charged to account {account}, which is not valid for you, so it will not "
        "start. Cancel it and submit again with an account you belong to.",
        never_starts_as_is=True,
    ),
    "Reservation": ReasonEntry(
        PendingCode.RESERVATION,
        "Job {job} waits for its advance reservation {reservation} to start (or to have room).",
    ),
    "None": ReasonEntry(
        PendingCode.NOT_YET_CONSIDERED,
        "Job {job} has not been looked at by the scheduler yet: it was just submitted or the "
        "scheduler has not reached it in this cycle. Ask again in a minute.",
    ),
    "BadConstraints": ReasonEntry(
        PendingCode.OTHER,
        "Job {job} asks for a combination of resources that no node in partition {partition} "
        "offers, so it will not start as it is. Ask for fewer GPUs, CPUs or memory per node.",
        never_starts_as_is=True,
    ),
    "NodeDown": ReasonEntry(
        PendingCode.NODES_UNAVAILABLE,
        "Job {job} waits because a node it needs is down; it starts when the node is back.",
    ),
    "QOSMaxWallDurationPerJobLimit": ReasonEntry(
        PendingCode.TIME_LIMIT,
        "Job {job} asks for {time_limit}, longer than QOS {qos} allows, so it will not start as "
        "it is. Ask for a shorter time or another QOS.",
        never_starts_as_is=True,
    ),
    "AssocMaxWallDurationPerJobLimit": ReasonEntry(
        PendingCode.TIME_LIMIT,
        "Job {job} asks for {time_limit}, longer than account {account} allows per job, so it will "
        "not start as it is. Ask for a shorter time.",
        never_starts_as_is=True,
    ),
    "AssocMaxGRESPerJob": ReasonEntry(
        PendingCode.ACCOUNT_GPU_LIMIT,
        "Job {job} asks for more GPUs ({gpus}) than account {account} allows in one job, so it "
        "will not start as it is. Submit again with fewer GPUs.",
        never_starts_as_is=True,
    ),
    "AssocMaxGRESPerNode": ReasonEntry(
        PendingCode.ACCOUNT_GPU_LIMIT,
        "Job {job} asks for more GPUs per node ({gpus}) than account {account} allows, so it will "
        "not start as it is. Spread them over more nodes or ask for fewer.",
        never_starts_as_is=True,
    ),
    "QOSMaxGRESPerNode": ReasonEntry(
        PendingCode.QOS_GPU_LIMIT,
        "Job {job} asks for more GPUs per node ({gpus}) than QOS {qos} allows, so it will not "
        "start as it is. Spread them over more nodes or ask for fewer.",
        never_starts_as_is=True,
    ),
    "QOSMaxJobsPerUserLimit": ReasonEntry(
        PendingCode.QOS_GPU_LIMIT,
        "Job {job} waits because you already run as many jobs as QOS {qos} allows one user; it "
        "starts when one of your jobs ends.",
    ),
    "AssocMaxJobsLimit": ReasonEntry(
        PendingCode.ACCOUNT_GPU_LIMIT,
        "Job {job} waits because you already run as many jobs as your association with account "
        "{account} allows; it starts when one of them ends.",
    ),
}

# Codes whose start-time estimate means something (Slurm keeps stale estimates on held jobs).
_NO_ESTIMATE = frozenset(
    code
    for code, entry in REASONS.items()
    if entry.never_starts_as_is or entry.code in (PendingCode.HELD, PendingCode.DEPENDENCY)
)


def start_estimate_is_meaningful(reason: str | None) -> bool:
    return reason not in _NO_ESTIMATE


def reason_entry(code: str | None) -> ReasonEntry | None:
    return REASONS.get(code or "None")


def describe_reason(code: str | None, context: ReasonContext) -> tuple[PendingCode, str]:
    """Our code and a plain sentence for Slurm's reason code."""
    entry = reason_entry(code)
    if entry is None:
        return (
            PendingCode.OTHER,
            f"Job {context.job} is pending with Slurm's reason {code!r}, which GPU Concierge does "
            "not explain yet; `squeue -j "
            f"{context.job} -o %R` or the cluster administrators can tell more.",
        )
    return entry.code, entry.template.format(**asdict(context))
