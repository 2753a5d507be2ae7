"""Slurm's GPU allocations over a period from ONE `sacct` call (accounting through slurmdbd).

    sacct -a -X -n -P -S START -E END -o JobIDRaw,User,Account,Partition,State,Start,End,AllocTRES
-a every user (the bot runs as root or SlurmUser), -X the allocation only (no steps), -n -P no
header and `|`-separated fields; -S/-E select the jobs in any state inside the window (sacct(1)),
and those that never started (Start `Unknown`/`None`) or hold no GPU are dropped here.
Instants print as `2026-12-06T16:20:00` under the runner's TZ=UTC; a running job's End is
`Unknown`. The GPUs are read from AllocTRES as for an ended job (accounting.allocated_gpus).
Without slurmdbd sacct says "Slurm accounting storage is disabled": BackendUnavailable; so does the
slurmrestd driver, whose sacct answers job ids only.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from backends.allocations import GpuAllocation
from backends.errors import BackendUnavailable, ConciergeError
from backends.slurm.accounting import allocated_gpus
from backends.slurm.durations import parse_slurm_instant
from backends.slurm.rest import SlurmRest
from backends.slurm.runner import CommandRunner

SACCT_FIELDS = "JobIDRaw,User,Account,Partition,State,Start,End,AllocTRES"
_DISABLED = "accounting storage is disabled"


def _instant_argument(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def sacct_window_argv(since: datetime, until: datetime) -> list[str]:
    return [
        "sacct",
        "-a",
        "-X",
        "-n",
        "-P",
        "-S",
        _instant_argument(since),
        "-E",
        _instant_argument(until),
        "-o",
        SACCT_FIELDS,
    ]


def parse_allocations(text: str) -> list[GpuAllocation]:
    found: list[GpuAllocation] = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) != 8:
            continue
        job_id, user, account, partition, _state, start_text, end_text, tres = fields
        start = parse_slurm_instant(start_text)
        gpus = allocated_gpus(tres)
        if start is None or not gpus or not job_id.isdigit():
            continue
        found.append(
            GpuAllocation(
                backend="slurm",
                job_id=job_id,
                owner=user,
                account=account or None,
                partition=partition or None,
                gpus=gpus,
                start=start,
                end=parse_slurm_instant(end_text),
            )
        )
    return found


def read_gpu_allocations(runner: CommandRunner, since: datetime, until: datetime) -> list[GpuAllocation]:
    if isinstance(runner, SlurmRest):
        # Its sacct answers only `-j IDS` (rest_accounting.sacct_query); a window it would ignore.
        raise BackendUnavailable("the slurmrestd driver reads no accounting for a period (only for job ids)")
    try:
        text = runner.run(sacct_window_argv(since, until))
    except ConciergeError as e:
        if _DISABLED in e.message.lower():
            raise BackendUnavailable(
                "Slurm keeps no accounting here (sacct: accounting storage is disabled)"
            ) from e
        if isinstance(e, BackendUnavailable):
            raise
        raise BackendUnavailable(f"sacct could not be read ({e.message})") from e
    read_at = datetime.now(UTC)
    return [replace(allocation, read_at=read_at) for allocation in parse_allocations(text)]
