"""A waiting job's reason in plain words, from the scheduler's code alone (a tracked state change).

Each backend words its own codes (Slurm's in backends/slurm/reasons.py); doors ask here, so they
import no backend's internals (pyproject.toml's import contracts).
"""

from __future__ import annotations

from backends.slurm.reasons import ReasonContext, describe_reason


def pending_sentence(backend: str, job: str, reason: str | None, partition: str | None = None) -> str:
    if backend == "slurm":
        return describe_reason(reason, ReasonContext(job=job, partition=partition or "default"))[1]
    return f"Job {job} is pending" + (f": {reason}." if reason else ".")
