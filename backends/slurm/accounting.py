"""How jobs that left Slurm's queue ended, from accounting (slurmdbd): ONE `sacct` for all of them.

`sacct -X -P -n -a -j ID,ID… --format=…` (allocations only, `|`-separated, no header): with `-j`
and no time window sacct searches all time and gives the most recent job of each id (sacct(1)
--duplicates). The REST driver answers the same command from /slurmdb/{version}/jobs
(rest_shapes.sacct_lines), so both drivers read these lines here.

- ExitCode is `code:signal` (`3:0` exited 3, `0:9` killed by SIGKILL).
- AllocTRES holds `gres/gpu=N` when AccountingStorageTRES has gres/gpu: GPU-hours = N × elapsed.
- An end whose word is in the state (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, DEADLINE) gets the reason
  the queue would have said (`TimeLimit`, …); otherwise sacct's Reason unless it is `None`.
- Comment is last: it is the one free-text field that could hold a `|`.
- A final State without an End is not an end yet: slurmctld sends the end record apart, and while
  slurmdbd catches up the job reads FAILED with ExitCode 0:0 and End Unknown (seen here after
  slurmdbd was down); such a job reads UNKNOWN, so the tracker waits for the real end.
Failures: "accounting storage is disabled" (or the REST driver's "keeps no job accounting") means
there is none to ask (nothing more will ever be known: the tracker then records `vanished` as
before); any other failure (slurmdbd down) is `unavailable`, so the jobs are asked about again next
pass.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import datetime

from backends.errors import ConciergeError
from backends.job_accounting import ACCOUNTING_UNAVAILABLE, EndedJobs
from backends.slurm.durations import parse_slurm_instant
from backends.slurm.json_formats import map_job_state, request_id_from_comment
from backends.slurm.runner import CommandRunner
from backends.types import JobEnding, JobRef, JobState, JobStatus

SACCT_FIELDS: tuple[str, ...] = (
    "JobIDRaw", "State", "ExitCode", "Reason", "ElapsedRaw", "AllocTRES", "Submit", "Start", "End",
    "User", "JobName", "Partition", "Comment",
)  # fmt: skip
_DISABLED = "accounting storage is disabled"
_SACCT_ERROR = re.compile(r"sacct: error: ([^/()]+)")
NO_ACCOUNTING = "keeps no job accounting"  # said where a driver cannot reach accounting at all
_STATE_REASONS = {
    "TIMEOUT": "TimeLimit", "DEADLINE": "TimeLimit", "OUT_OF_MEMORY": "OutOfMemory", "NODE_FAIL": "NodeFail",
}  # fmt: skip

_UNTYPED_GPUS = re.compile(r"(?:^|,)gres/gpu=(\d+)(?:,|$)")
_TYPED_GPUS = re.compile(r"(?:^|,)gres/gpu:[^=,]+=(\d+)")


def sacct_argv(job_ids: Sequence[str]) -> list[str]:
    return ["sacct", "-X", "-P", "-n", "-a", f"--format={','.join(SACCT_FIELDS)}", "-j", ",".join(job_ids)]


def read_ended_jobs(runner: CommandRunner, refs: Sequence[JobRef]) -> EndedJobs:
    """What accounting knows of `refs` (one sacct); see the module docstring for failures."""
    if not refs:
        return EndedJobs()
    try:
        text = runner.run(sacct_argv([ref.job_id for ref in refs]))
    except ConciergeError as e:
        said = str(e).lower()
        if _DISABLED in said or NO_ACCOUNTING in said:
            return EndedJobs()
        return EndedJobs(unavailable=_unavailable(str(e)))
    return EndedJobs(statuses=tuple(parse_sacct_lines(text, {ref.job_id for ref in refs})))


def _unavailable(said: str) -> str:
    """Slurm's last word on it ("Problem talking to the database: Connection refused"), not the CLI
    error's advice about slurmctld and munge, which answered fine."""
    words = _SACCT_ERROR.findall(said)
    detail = f"sacct: {words[-1].strip()}" if words else said
    return f"{ACCOUNTING_UNAVAILABLE} ({detail}); ask the cluster administrators whether slurmdbd is running"


def parse_sacct_lines(text: str, wanted: Collection[str]) -> list[JobStatus]:
    """One JobStatus per wanted job in sacct's `-X -P -n` lines of SACCT_FIELDS (the last one wins)."""
    found: dict[str, JobStatus] = {}
    for line in text.splitlines():
        fields = line.split("|", len(SACCT_FIELDS) - 1)
        if len(fields) != len(SACCT_FIELDS):
            continue  # a warning or a stray line, not a record
        status = _status(dict(zip(SACCT_FIELDS, fields, strict=True)))
        if status is not None and status.ref.job_id in wanted:
            found[status.ref.job_id] = status
    return list(found.values())


def _status(record: dict[str, str]) -> JobStatus | None:
    job_id = record["JobIDRaw"].strip()
    if not job_id.isdigit():
        return None
    words = record["State"].split()  # "CANCELLED by 1001"
    raw_state = words[0] if words else "UNKNOWN"
    state = map_job_state([raw_state])
    if state.is_final and _instant(record["End"]) is None:
        # slurmctld sends a job's end apart from its start; after slurmdbd was down the start came
        # first with the final state but ExitCode 0:0 and End Unknown (seen here). Not ended yet.
        state = JobState.UNKNOWN
    elapsed = _int(record["ElapsedRaw"])
    gpus = allocated_gpus(record["AllocTRES"])
    comment = record["Comment"].strip() or None
    ending = None
    if state.is_final:
        code, signal = _exit_code(record["ExitCode"])
        ending = JobEnding(
            exit_code=code,
            signal=signal,
            reason=_reason(raw_state, record["Reason"]),
            elapsed_seconds=elapsed,
            gpu_hours=gpu_hours(gpus, elapsed),
        )
    return JobStatus(
        ref=JobRef(backend="slurm", job_id=job_id),
        name=record["JobName"],
        user=record["User"],
        state=state,
        raw_state=raw_state,
        partition=record["Partition"] or None,
        submitted_at=_instant(record["Submit"]),
        started_at=_instant(record["Start"]),
        elapsed_seconds=elapsed if state is not JobState.PENDING else None,
        comment=comment,
        request_id=request_id_from_comment(comment),
        ending=ending,
    )


def allocated_gpus(alloc_tres: str) -> int | None:
    """The GPUs in AllocTRES (`billing=2,cpu=2,gres/gpu=2,mem=2000M,node=1`); None when it names none.

    The untyped `gres/gpu` is the total (AccountingStorageTRES=gres/gpu); typed `gres/gpu:a100=2`
    entries are summed only when no untyped one is printed (23.11+ spells the same `gres/gpu`)."""
    untyped = _UNTYPED_GPUS.search(alloc_tres)
    if untyped:
        return int(untyped[1])
    typed = _TYPED_GPUS.findall(alloc_tres)
    return sum(int(count) for count in typed) if typed else None


def gpu_hours(gpus: int | None, elapsed_seconds: int | None) -> float | None:
    if gpus is None or elapsed_seconds is None:
        return None
    return round(gpus * elapsed_seconds / 3600, 4)


def _exit_code(text: str) -> tuple[int | None, int | None]:
    code, _, signal = text.partition(":")
    exit_code, signal_number = _int(code), _int(signal)
    if signal_number:
        return None, signal_number
    return exit_code, None


def _reason(raw_state: str, reason: str) -> str | None:
    if raw_state in _STATE_REASONS:
        return _STATE_REASONS[raw_state]
    reason = reason.strip()
    return None if reason in ("", "None") else reason


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _instant(text: str) -> datetime | None:
    return parse_slurm_instant(text) if text.strip() else None  # sacct runs under TZ=UTC
