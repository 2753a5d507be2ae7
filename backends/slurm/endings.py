"""How a Slurm job ended, read from its `squeue --json` object while the controller still lists it.

Slurm keeps a finished job for MinJobAge (300 s by default), which the tracker's polls fall well
within; what it reports is stored with the job's last state, so it stays after Slurm forgets.
- `exit_code` is the raw wait status in 22.05/23.02 (127 << 8 for "command not found"; a bare
  signal number for a job killed by one) and {"status", "return_code", "signal": {"id"|"signal_id"}}
  in later data_parser versions.
- `standard_output` is the `--output` pattern before expansion in 22.05 (`scontrol show job` prints
  it expanded); it is expanded here the way Slurm's own job_info does (%j, %x, %u, %A, %a, %N, %%,
  with an optional width), and a relative one is taken from the job's working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

_FIELD = re.compile(r"%(\d*)([AajNux%])")
_NO_FILE = frozenset({"", "/dev/null"})


def exit_and_signal(value: Any, number: Callable[[Any], int | None]) -> tuple[int | None, int | None]:
    """(exit code, signal) of squeue's `exit_code`; `number` reads Slurm's numbers of any version."""
    if isinstance(value, Mapping):
        signal = value.get("signal")
        signal_id = number(signal.get("id", signal.get("signal_id"))) if isinstance(signal, Mapping) else None
        if signal_id:
            return None, signal_id
        return number(value.get("return_code")), None
    status = number(value)
    if status is None:
        return None, None
    if os.WIFSIGNALED(status) and status & 0x7F:
        return None, os.WTERMSIG(status)
    return os.WEXITSTATUS(status), None


def output_path(
    pattern: str | None, *, job_id: str, name: str, user: str, workdir: str | None, node: str | None,
    array_job: int | None = None, array_task: int | None = None,
) -> str | None:  # fmt: skip
    """The job's output file with Slurm's %-fields filled in; None when it writes none."""
    if pattern is None or pattern in _NO_FILE:
        return None
    values = {
        "j": job_id,
        "x": name,
        "u": user,
        "A": str(array_job) if array_job else job_id,
        "a": str(array_task) if array_task is not None else "4294967294",
        "N": node or "",
    }

    def fill(match: re.Match[str]) -> str:
        width, field = match.groups()
        if field == "%":
            return "%"
        value = values[field]
        return value.zfill(int(width)) if width and value.isdigit() else value

    path = pattern if "\\" in pattern else _FIELD.sub(fill, pattern)  # a backslash turns expansion off
    if not path.startswith("/") and workdir:
        path = os.path.join(workdir, path)
    return path
