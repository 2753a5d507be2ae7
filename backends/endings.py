"""How an ended job ended, in plain words, from what its scheduler reported (`JobEnding`).

One sentence for every door (the CLI's `status` and `history`, the Slack thread): the exit code
or signal and what it usually means, then the scheduler's reason when it adds something. The
meanings are the shell's and the kernel's, not any one site's: 127 is a command the shell could not
find (`python` on a system that has only `python3`), 126 one it could not execute, 128+N a
process killed by signal N.
"""

from __future__ import annotations

import signal as signals

from backends.durations_text import duration
from backends.types import JobEnding, JobState

_EXIT_MEANINGS = {
    126: "a program it runs was found but could not be executed (not executable, or not a program)",
    127: (
        'the shell could not find a program it runs ("command not found"), e.g. `python` where only '
        "`python3` is installed, or a program that is on the PATH only after a module or environment "
        "is loaded"
    ),
}
# The scheduler's word for an end, where it says more than the exit code (Slurm's job reasons,
# Kubernetes' container and Job reasons), said of the job: "It …".
_REASONS = {
    "TimeLimit": "reached its time limit, so the scheduler stopped it",
    "DeadlineExceeded": "reached its time limit (the Job's deadline), so Kubernetes stopped it",
    "OutOfMemory": "ran out of memory",
    "OOMKilled": "ran out of memory, so the kernel killed it",
    "NodeFail": "lost a node it ran on (the node failed)",
    "NodeDown": "lost a node it ran on (the node went down)",
    "JobLaunchFailure": "could not be started on the node (JobLaunchFailure): ask the administrators",
    "BackoffLimitExceeded": "failed as often as its Job allows (BackoffLimitExceeded)",
    "Prolog": "could not start: the node's prolog script failed",
    "BadConstraints": "asked for something no node has",
}


def signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def ending_sentence(state: JobState, ending: JobEnding | None) -> str | None:
    """How the job ended, said of it ("It …"): e.g. "exited with code 127: the shell could not find …";
    None when the scheduler said nothing about it."""
    if ending is None:
        return None
    parts: list[str] = []
    if ending.signal:
        parts.append(f"was killed by signal {ending.signal} ({signal_name(ending.signal)})")
    elif ending.exit_code is not None and (ending.exit_code or state is not JobState.CANCELLED):
        said = f"exited with code {ending.exit_code}"
        meaning = _EXIT_MEANINGS.get(ending.exit_code)
        if meaning is None and 128 < ending.exit_code < 160:
            meaning = f"a program it ran was killed by {signal_name(ending.exit_code - 128)}"
        parts.append(f"{said}: {meaning}" if meaning else said)
    if ending.reason in _REASONS:
        parts.append(_REASONS[ending.reason])
    if not parts:
        return None
    return "; it ".join(parts)


def usage_sentence(ending: JobEnding | None) -> str | None:
    """What the job used, from accounting, said of it ("It …"): "ran 1 h 2 min, 2.07 GPU-hours
    allocated"; None when the scheduler's accounting said nothing (none kept, or not yet asked)."""
    if ending is None or ending.elapsed_seconds is None:
        return None
    ran = duration(seconds=ending.elapsed_seconds) if ending.elapsed_seconds else "less than a second"
    said = f"ran {ran}"
    if ending.gpu_hours:
        said += (
            f", {ending.gpu_hours:.2f} GPU-hours allocated"
            if ending.gpu_hours >= 0.01
            else ", under 0.01 GPU-hours allocated"
        )
    return said
