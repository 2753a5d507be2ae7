"""The Slurm backend: the Backend protocol over sbatch, squeue, sinfo, scontrol and scancel, run by
the command runner (runner.py) or sent to slurmrestd (rest.py, `slurm.driver: rest`).

Cost per operation (controller RPCs = commands run; FIELD_NOTES asks for the minimum):
  plan 0 · validate 1 (sbatch --test-only) · submit 1 · statuses 1 for any number of jobs ·
  ended_jobs 1 (sacct, to slurmdbd, for any number of jobs) ·
  queue 1 · capacity 1 · explain 1 (+1 sinfo for reasons alternatives help with, +1 scontrol
  assoc_mgr for GPU-limit reasons, +1 sprio for Priority) · gpu_limits 1 (assoc_mgr) ·
  gpu_allocations 1 (sacct, to slurmdbd) ·
  cancel 2 (squeue for the owner, scancel).
`squeue --json` is used for every job listing: 22.05 ignores squeue's filters with --json (so we
filter here), later versions honour `--states=all`/`--user` and simply send less. Jobs squeue no
longer knows (finished more than MinJobAge ago) are left out of `statuses`; the tracker asks
`ended_jobs` (accounting.py: one sacct) for them, and records `vanished` only when accounting does
not know them either (or the cluster keeps none: "Slurm accounting storage is disabled").

Who runs the job: as root (submit_mode auto/uid) every submission carries `--uid`/`--gid` of the
person's Unix account and `--chdir` defaults to their home; not as root (self) the bot submits only
for its own Unix user and refuses others with a message that says why. Jobs are never submitted
as root. Cancelling checks the owner first (our PermissionDenied), then runs scancel as the person
(`runuser`) so the controller enforces it too; admins cancel as the bot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from backends.allocations import GpuAllocation
from backends.bulk import collector_paused
from backends.cluster_limits import ClusterLimits
from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)
from backends.job_accounting import EndedJobs
from backends.slurm.accounting import read_ended_jobs
from backends.slurm.accounts import PasswdAccounts, UnixAccount, UnixAccounts
from backends.slurm.alternatives import jobs_ahead
from backends.slurm.capacity import SINFO_ARGV, ClusterCapacity, capacity_from_sinfo, pools_sorted
from backends.slurm.durations import describe_instant, parse_slurm_instant
from backends.slurm.explanations import NEEDS_CAPACITY, NEEDS_LIMITS, LimitReading, explain_job
from backends.slurm.gpu_hours import read_gpu_allocations
from backends.slurm.json_formats import SlurmJob, parse_squeue_json, split_stderr
from backends.slurm.limit_reading import read_job_limit, read_request_limits
from backends.slurm.priority import priority_words
from backends.slurm.rest import SlurmRest
from backends.slurm.runner import CommandRunner, SlurmCli
from backends.slurm.script import LOGIN_ENVIRONMENT, render_sbatch_script, script_warnings
from backends.slurm.settings import SlurmSettings
from backends.types import (
    QUEUE_ORDER,
    Footprint,
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

SQUEUE_ARGV: tuple[str, ...] = ("squeue", "--json", "--states=all")
_JOB_ID = re.compile(r"^(?P<id>\d+)(?:;(?P<cluster>[A-Za-z0-9_.-]+))?$")
_TEST_ONLY = re.compile(
    r"Job \d+ to start at (?P<start>\S+) using (?P<cpus>\d+) processors on nodes (?P<nodes>\S+)"
    r"(?: in partition (?P<partition>\S+))?"
)


class SlurmBackend:
    name: Target = "slurm"

    def __init__(
        self,
        settings: SlurmSettings,
        runner: CommandRunner | None = None,
        *,
        running_as_root: bool | None = None,
        accounts: UnixAccounts | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._accounts = accounts or PasswdAccounts()
        rest = settings.driver == "rest"  # slurmrestd acts for each person by X-SLURM-USER-NAME
        self._root = (rest or os.geteuid() == 0) if running_as_root is None else running_as_root
        self.runner: CommandRunner = runner or (
            SlurmRest(settings, accounts=self._accounts)
            if rest
            else SlurmCli(settings, accounts=self._accounts, running_as_root=self._root)
        )
        self._clock = clock or (lambda: datetime.now(UTC))

    # -- who submits -------------------------------------------------------------------------

    def _submits_for_others(self) -> bool:
        mode = self._settings.submit_mode
        if mode == "uid" and not self._root:
            raise ConfigurationError(
                "slurm.submit_mode is 'uid', which needs the bot to run as root (sbatch --uid is "
                "root-only); run the bot as root or set submit_mode to 'self'"
            )
        return mode == "uid" or (mode == "auto" and self._root)

    def _account_of(self, identity: Identity) -> UnixAccount:
        if not identity.unix_user:
            raise RequestInvalid(
                f"no Unix user is mapped for {identity.requester}; ask an admin to run "
                f"`concierge users map {identity.requester} --unix USER`"
            )
        account = self._accounts.lookup(identity.unix_user)
        if account is None:
            raise RequestInvalid(
                f"the Unix user {identity.unix_user!r} mapped for {identity.requester} does not exist "
                "on this machine; ask an admin to fix the mapping (`concierge users map …`)"
            )
        if account.uid == 0:
            raise PermissionDenied(
                f"{identity.requester} is mapped to {account.name}, a root account; GPU Concierge never "
                "submits jobs as root. Ask an admin to map a personal Unix user."
            )
        return account

    def _submit_identity_args(self, identity: Identity) -> list[str]:
        account = self._account_of(identity)
        if self._submits_for_others():
            return [f"--uid={account.name}", f"--gid={account.gid}"]
        bot = self._accounts.current()
        if account.name != bot.name:
            raise PermissionDenied(
                f"the bot runs as {bot.name}, not root, so it can only submit as {bot.name}; it "
                f"cannot submit {account.name}'s job. Submit it yourself with sbatch, or ask an "
                "admin to run the bot as root so jobs run as each person."
            )
        return []

    def _workdir(self, identity: Identity) -> str | None:
        if self._settings.workdir:
            return self._settings.workdir
        if self._submits_for_others():
            return self._account_of(identity).home
        return None

    # -- Backend protocol ----------------------------------------------------------------------

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        self._submit_identity_args(identity)  # fail now, before the person confirms, if we could not submit
        script = render_sbatch_script(
            footprint, identity, request_id, self._settings, workdir=self._workdir(identity)
        )
        return Plan(
            backend="slurm",
            request_id=request_id,
            footprint=footprint,
            identity=identity,
            sbatch_script=script,
            warnings=script_warnings(footprint.request),
            environment=LOGIN_ENVIRONMENT.format(user=self._account_of(identity).name),
        )

    def _script_of(self, plan: Plan) -> str:
        if plan.backend != "slurm" or not plan.sbatch_script:
            raise RequestInvalid(f"this plan is for {plan.backend}, not Slurm; it has no sbatch script")
        return plan.sbatch_script

    def validate(self, plan: Plan) -> list[str]:
        script = self._script_of(plan)
        argv = ["sbatch", "--test-only", *self._submit_identity_args(plan.identity)]
        said = self.runner.run(argv, stdin=script, include_stderr=True)
        warnings = [line.split("warning:", 1)[1].strip() for line in said.splitlines() if "warning:" in line]
        estimate = _TEST_ONLY.search(said)
        if estimate:
            start = parse_slurm_instant(estimate["start"])
            if start is not None and (start - self._clock()).total_seconds() > 60:
                where = f" in partition {estimate['partition']}" if estimate["partition"] else ""
                warnings.append(
                    f"it would not start right away: Slurm's estimate is {describe_instant(start)}{where}"
                )
        return warnings

    def submit(self, plan: Plan) -> JobRef:
        script = self._script_of(plan)
        argv = ["sbatch", "--parsable", *self._submit_identity_args(plan.identity)]
        answer = self.runner.run(argv, stdin=script).strip()
        last_line = answer.splitlines()[-1].strip() if answer else ""
        match = _JOB_ID.match(last_line)
        if match is None:
            raise BackendRejected(f"sbatch did not answer with a job id (it said {answer!r})")
        return JobRef(backend="slurm", job_id=match["id"], cluster=match["cluster"])

    def _load_jobs(self, extra: Sequence[str] = ()) -> list[SlurmJob]:
        # stderr too: 22.05's squeue --json exits 0 on failures and says why only there (munge).
        document, stderr = split_stderr(self.runner.run([*SQUEUE_ARGV, *extra], include_stderr=True))
        return parse_squeue_json(document, stderr)

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        if not refs:
            return []
        wanted = {ref.job_id for ref in refs}
        now = self._clock()
        return [job.to_status(now) for job in self._load_jobs() if job.job_id in wanted]

    def ended_jobs(self, refs: Sequence[JobRef]) -> EndedJobs:
        """What accounting (slurmdbd) says of jobs, one sacct for all of them (accounting.py)."""
        return read_ended_jobs(self.runner, refs)

    def queue(self, filter: QueueFilter) -> list[JobStatus]:
        extra = [f"--user={filter.user}"] if filter.user else []
        ids = set(filter.job_ids)
        states = set(filter.states)
        now = self._clock()
        selected = [
            job
            for job in self._load_jobs(extra)
            if (filter.user is None or job.user == filter.user)
            and (not ids or job.job_id in ids)
            and (not states or job.state in states)
        ]
        selected.sort(
            key=lambda job: (
                QUEUE_ORDER.get(job.state, 9),
                -(job.priority or 0),
                int(job.job_id) if job.job_id.isdigit() else 0,
            )
        )
        with collector_paused():
            return [job.to_status(now) for job in selected]

    def _capacity_snapshot(self) -> ClusterCapacity:
        return capacity_from_sinfo(self.runner.run(list(SINFO_ARGV)))

    def capacity(self) -> list[GpuPool]:
        return pools_sorted(self._capacity_snapshot().pools)

    def gpu_limits(self, footprint: Footprint, identity: Identity) -> ClusterLimits:
        """Slurm's QOS and association GPU limits this request would meet (one assoc_mgr call)."""
        return read_request_limits(self.runner, footprint, self._account_of(identity).name)

    def gpu_allocations(self, since: datetime, until: datetime) -> list[GpuAllocation]:
        """Jobs that held GPUs in `[since, until)` from accounting (one sacct), for the digest."""
        return read_gpu_allocations(self.runner, since, until)

    def explain(self, ref: JobRef) -> list[PendingReason]:
        jobs = self._load_jobs()
        job = _find(jobs, ref)
        capacity: ClusterCapacity | None = None
        limit: LimitReading | None = None
        priority: str | None = None
        if job.state is JobState.PENDING:
            reason = job.reason or "None"
            if reason in NEEDS_CAPACITY:
                try:
                    capacity = self._capacity_snapshot()
                except BackendUnavailable:
                    capacity = None  # the explanation still stands without alternatives
            if reason in NEEDS_LIMITS:
                limit = read_job_limit(self.runner, job, jobs)
            if reason == "Priority":
                priority = priority_words(self.runner, job, jobs_ahead(job, jobs))
        return explain_job(job, jobs, self._clock(), capacity=capacity, limit=limit, priority=priority)

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        job = _find(self._load_jobs(), ref)
        if job.state.is_final:
            raise BackendRejected(
                f"job {job.job_id} has already ended ({job.raw_state}); there is nothing to cancel"
            )
        if not identity.is_admin:
            if not identity.unix_user:
                raise PermissionDenied(
                    f"no Unix user is mapped for {identity.requester}, so job {job.job_id} cannot be "
                    f"yours; ask an admin to run `concierge users map {identity.requester} --unix USER`"
                )
            if job.user != identity.unix_user:
                raise PermissionDenied(
                    f"job {job.job_id} belongs to {job.user}; only its owner or an admin can cancel it"
                )
        as_user = None if identity.is_admin else identity.unix_user
        self.runner.run(["scancel", job.job_id], as_user=as_user)


def _find(jobs: Sequence[SlurmJob], ref: JobRef) -> SlurmJob:
    for job in jobs:
        if job.job_id == ref.job_id:
            return job
    raise JobNotFound(
        f"job {ref.job_id} is not in Slurm's queue: it ended a while ago (Slurm forgets finished "
        f"jobs after a few minutes) or the id is wrong; `concierge status {ref.job_id}` shows what "
        "GPU Concierge recorded"
    )
