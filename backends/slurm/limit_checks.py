"""Which of Slurm's GPU limits a job (or a request not yet submitted) meets, with the current use.

From one association-manager reading (limits.py) and, where there is one, the queue already read
(the running jobs that hold the GPUs counted against each limit, named in the explanation). The
controller's own usage figure wins over a sum from the queue: it is what Slurm compares with.

Each limit says which reason code Slurm gives a job held by it (squeue(1) JOB REASON CODES), so
`why` picks the limit behind a pending job's reason and the preview checks them all.
A job that asks more than a limit by itself never starts: without the QOS flag DenyOnLimit Slurm
accepts it and holds it forever (acct_policy.c checks limits strictly at submit only with that
flag); one that fits the limit but not the room left waits until running jobs release GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backends.durations_text import plural
from backends.slurm.json_formats import SlurmJob
from backends.slurm.limits import AssocMgr, AssocRecord
from backends.types import JobState

# The reason codes a GPU limit gives a job (squeue(1)); `why` reads the limits only for these.
LIMIT_REASONS = frozenset(
    {
        "QOSMaxGRESPerJob",
        "QOSMaxGRESPerNode",
        "QOSMaxGRESPerUser",
        "MaxGRESPerAccount",
        "QOSGrpGRES",
        "AssocMaxGRESPerJob",
        "AssocMaxGRESPerNode",
        "AssocGrpGRES",
    }
)


@dataclass(frozen=True)
class Ask:
    """What a job asks, where it is charged, and who asks."""

    user: str
    account: str | None
    qos: str | None
    partition: str | None
    gpus: int  # the whole job's
    gpus_per_node: int
    job_id: str | None = None  # a queued job is not counted among the holders of its own limit


@dataclass(frozen=True)
class Holder:
    job_id: str
    user: str
    gpus: int


@dataclass(frozen=True)
class LimitCheck:
    reason: str  # the code Slurm gives a job this limit holds
    words: str  # "QOS team allows each user 2 GPUs at once"
    limit: int
    used: int | None  # GPUs counted against it now (None for per-job and per-node limits)
    asked: int
    holders: tuple[Holder, ...] = ()

    @property
    def never_fits(self) -> bool:
        return self.asked > self.limit

    @property
    def room(self) -> int:
        return max(self.limit - (self.used or 0), 0)

    @property
    def fits_now(self) -> bool:
        return not self.never_fits and self.asked <= self.room


def _job_gpus(job: SlurmJob) -> int:
    return sum(ask.count for ask in job.gpus) * (job.node_count or 1)


def _running(queue: Sequence[SlurmJob], ask: Ask) -> list[SlurmJob]:
    return [job for job in queue if job.state is JobState.RUNNING and job.job_id != ask.job_id and job.gpus]


def _holders(jobs: Sequence[SlurmJob]) -> tuple[Holder, ...]:
    ordered = sorted(jobs, key=lambda job: (len(job.job_id), job.job_id))  # numerically, as ids are
    return tuple(Holder(job.job_id, job.user, _job_gpus(job)) for job in ordered)


def _summed(jobs: Sequence[SlurmJob]) -> int:
    return sum(_job_gpus(job) for job in jobs)


def _descendants(mgr: AssocMgr, account: str) -> set[str]:
    """The account and every account below it (an account's Grp limit covers its children)."""
    found = {account}
    grew = True
    while grew:
        grew = False
        for record in mgr.assocs:
            if record.user is None and record.parent in found and record.account not in found:
                found.add(record.account)
                grew = True
    return found


def _qos_checks(ask: Ask, mgr: AssocMgr, qos_name: str, running: Sequence[SlurmJob]) -> list[LimitCheck]:
    qos = mgr.qos.get(qos_name)
    if qos is None:
        return []
    checks: list[LimitCheck] = []
    in_qos = [job for job in running if job.qos == qos_name]
    if qos.per_job is not None:
        checks.append(
            LimitCheck(
                "QOSMaxGRESPerJob",
                f"QOS {qos_name} allows {_gpus(qos.per_job)} per job",
                qos.per_job,
                None,
                ask.gpus,
            )
        )
    if qos.per_node is not None:
        checks.append(
            LimitCheck(
                "QOSMaxGRESPerNode",
                f"QOS {qos_name} allows {_gpus(qos.per_node)} per node",
                qos.per_node,
                None,
                ask.gpus_per_node,
            )
        )
    if qos.per_user is not None:
        mine = [job for job in in_qos if job.user == ask.user]
        uid = mgr.uid_of(ask.user)
        used = qos.used_by_uid.get(uid) if uid is not None else None
        checks.append(
            LimitCheck(
                "QOSMaxGRESPerUser",
                f"QOS {qos_name} allows each user {_gpus(qos.per_user)} at once",
                qos.per_user,
                used if used is not None else _summed(mine),
                ask.gpus,
                _holders(mine),
            )
        )
    if qos.per_account is not None and ask.account:
        theirs = [job for job in in_qos if job.account == ask.account]
        used = qos.used_by_account.get(ask.account)
        checks.append(
            LimitCheck(
                "MaxGRESPerAccount",
                f"QOS {qos_name} allows each account {_gpus(qos.per_account)} at once "
                f"(account {ask.account})",
                qos.per_account,
                used if used is not None else _summed(theirs),
                ask.gpus,
                _holders(theirs),
            )
        )
    if qos.group.limit is not None:
        checks.append(
            LimitCheck(
                "QOSGrpGRES",
                f"QOS {qos_name} allows {_gpus(qos.group.limit)} at once for all its jobs together",
                qos.group.limit,
                qos.group.used if qos.group.used is not None else _summed(in_qos),
                ask.gpus,
                _holders(in_qos),
            )
        )
    return checks


def _assoc_group(
    ask: Ask, mgr: AssocMgr, account: str, record: AssocRecord, running: Sequence[SlurmJob]
) -> LimitCheck | None:
    limit = record.group.limit
    if limit is None:
        return None
    if record.user is not None:
        covered = [job for job in running if job.user == record.user and job.account == record.account]
        words = f"your association with account {record.account} allows {_gpus(limit)} at once"
    else:
        accounts = _descendants(mgr, record.account)
        covered = [job for job in running if job.account in accounts]
        below = "" if record.account == account else f" (account {account} is under it)"
        words = f"account {record.account}{below} allows {_gpus(limit)} at once for all its jobs together"
    used = record.group.used if record.group.used is not None else _summed(covered)
    return LimitCheck("AssocGrpGRES", words, limit, used, ask.gpus, _holders(covered))


def _assoc_checks(ask: Ask, mgr: AssocMgr, account: str, running: Sequence[SlurmJob]) -> list[LimitCheck]:
    checks: list[LimitCheck] = []
    own = mgr.user_assoc(ask.user, account, ask.partition)
    chain = ([own] if own else []) + mgr.account_chain(account)
    # Per-job and per-node limits are inherited down the tree: the nearest one set is the one in force.
    per_job = next((r for r in chain if r.per_job is not None), None)
    if per_job is not None and per_job.per_job is not None:
        checks.append(
            LimitCheck(
                "AssocMaxGRESPerJob",
                f"account {per_job.account} allows {_gpus(per_job.per_job)} per job",
                per_job.per_job,
                None,
                ask.gpus,
            )
        )
    per_node = next((r for r in chain if r.per_node is not None), None)
    if per_node is not None and per_node.per_node is not None:
        checks.append(
            LimitCheck(
                "AssocMaxGRESPerNode",
                f"account {per_node.account} allows {_gpus(per_node.per_node)} per node",
                per_node.per_node,
                None,
                ask.gpus_per_node,
            )
        )
    for record in chain:
        group = _assoc_group(ask, mgr, account, record, running)
        if group is not None:
            checks.append(group)
    return checks


def limit_checks(ask: Ask, mgr: AssocMgr, queue: Sequence[SlurmJob] = ()) -> list[LimitCheck]:
    """Every GPU limit of the job's QOS and association chain (QOS first, as Slurm checks them)."""
    if ask.gpus <= 0:
        return []
    running = _running(queue, ask)
    account = ask.account or mgr.default_account(ask.user)
    checks = _qos_checks(ask, mgr, ask.qos or "normal", running)
    if account:
        checks += _assoc_checks(ask, mgr, account, running)
    return checks


def check_for_reason(reason: str, checks: Sequence[LimitCheck]) -> LimitCheck | None:
    """The limit behind Slurm's reason: of those that give this code, the one with the least room."""
    matching = [check for check in checks if check.reason == reason]
    if not matching:
        return None
    return min(matching, key=lambda check: (check.fits_now, check.room - check.asked))


def _gpus(count: int) -> str:
    return f"{count} {plural(count, 'GPU', 'GPUs')}"


def held_by(check: LimitCheck, user: str) -> str:
    """' by your jobs 41, 42' / ' by jobs 41 (yours), 43 (bob)' / '' when the queue named none."""
    if not check.holders:
        return ""
    if all(holder.user == user for holder in check.holders):
        ids = ", ".join(holder.job_id for holder in check.holders)
        return f" by your {plural(len(check.holders), 'job', 'jobs')} {ids}"
    named = ", ".join(
        f"{holder.job_id} ({'yours' if holder.user == user else holder.user})" for holder in check.holders
    )
    return f" by {plural(len(check.holders), 'job', 'jobs')} {named}"


def describe_check(check: LimitCheck, user: str) -> str:
    """The limit, the current use and what would fit, in one sentence without a leading subject."""
    if check.never_fits:
        return (
            f"{check.words} and this asks for {check.asked}, more than that by itself, so Slurm holds it "
            f"forever: ask for {check.limit} or fewer"
        )
    if check.used is None:
        return f"{check.words}; this asks for {check.asked}, which fits"
    in_use = f"{check.used} {plural(check.used, 'is', 'are')} in use{held_by(check, user)}"
    if check.fits_now:
        return f"{check.words}; {in_use}, so the {check.asked} asked fit now"
    room = check.room
    fewer = f"ask for {room} or " if 0 < room < check.asked else ""
    return f"{check.words}; {in_use}: {fewer}wait for one to end"
