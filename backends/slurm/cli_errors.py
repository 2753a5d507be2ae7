"""What a failed Slurm command means, as one of our errors with Slurm's own words and a next step.

Matching is on the fixed parts of Slurm's messages (src/common/slurm_errno.c), which have been
stable across 22.05 to 25.x; the whole stderr is quoted in the message so nothing Slurm said is lost.
Unknown failures of `sbatch`/`scancel` count as rejections (the cluster said no); unknown failures
of the read-only commands count as the cluster being unavailable (try again later).
"""

from __future__ import annotations

from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConciergeError,
    JobNotFound,
    PermissionDenied,
)

RETRY_AFTER_S = 30.0

_UNAVAILABLE = (
    "unable to contact slurm controller",
    "connection refused",
    "socket timed out",
    "zero bytes were transmitted or received",
    "communication connection failure",
    "slurm_receive_msg",
    "unable to establish controller machine",
    "invalid authentication credential",  # munge down or keys differ
    "munge",
)

# (fragment of Slurm's message, what to do) — checked in order.
_REJECTIONS: tuple[tuple[str, str], ...] = (
    (
        "invalid partition name specified",
        "ask for one of the partitions `concierge free` lists, or leave the partition out",
    ),
    (
        "invalid partition specified",
        "ask for one of the partitions `concierge free` lists, or leave the partition out",
    ),
    (
        "invalid generic resource (gres) specification",
        "ask for a GPU type this cluster has (`concierge free` lists them), or leave the type out",
    ),
    (
        "requested node configuration is not available",
        "no node in that partition has that many GPUs of that type (or that many CPUs or that much "
        "memory); ask for fewer per node, or another type or partition (`concierge free`)",
    ),
    (
        "requested time limit is invalid",
        "ask for a shorter time: the partition or QOS allows less (`concierge free` shows each "
        "partition's maximum)",
    ),
    ("invalid --time specification", "give the time as minutes, HH:MM:SS or D-HH:MM:SS"),
    (
        "invalid account",
        "ask for an account you belong to (`sacctmgr show assoc user=$USER` lists them), or leave "
        "the account out to use your default",
    ),
    (
        "invalid qos",
        "ask for a QOS your account may use, or leave it out to use the default",
    ),
    (
        "job violates accounting/qos policy",
        "the request is over one of your limits (GPUs, jobs or time); ask for less",
    ),
    (
        "qos not permitted",
        "ask for a QOS your account and partition allow, or leave it out",
    ),
    (
        "dos line breaks",
        "the script has Windows line ends; send the command with plain newlines",
    ),
    (
        "node count specification invalid",
        "ask for a node count the partition allows",
    ),
    (
        "more processors requested than permitted",
        "ask for fewer CPUs per task or fewer tasks",
    ),
    (
        "memory specification can not be satisfied",
        "ask for less memory per node",
    ),
)


def _quoted(stderr: str) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    return " / ".join(lines) if lines else "no message"


def translate_failure(program: str, returncode: int, stderr: str) -> ConciergeError:
    """The error for a Slurm command that exited non-zero."""
    said = _quoted(stderr)
    lowered = stderr.lower()
    if any(fragment in lowered for fragment in _UNAVAILABLE):
        return BackendUnavailable(
            f"Slurm's controller could not be reached ({program}: {said}); the cluster may be "
            "restarting or down. Try again in a minute; if it persists, ask the cluster "
            "administrators whether slurmctld and munge are running.",
            retry_after=RETRY_AFTER_S,
        )
    if "invalid job id specified" in lowered:
        return JobNotFound(
            f"Slurm does not know that job ({program}: {said}); it may have finished long ago "
            "(Slurm forgets finished jobs after a few minutes) or the id is wrong"
        )
    if "access/permission denied" in lowered or "access denied" in lowered:
        return PermissionDenied(
            f"Slurm refused ({program}: {said}): the job belongs to someone else; only its owner "
            "or an administrator can do that"
        )
    for fragment, advice in _REJECTIONS:
        if fragment in lowered:
            return BackendRejected(f"Slurm rejected the job: {said}. What to do: {advice}.")
    if program in ("sbatch", "scancel"):
        return BackendRejected(f"Slurm refused ({program} exited {returncode}): {said}")
    return BackendUnavailable(
        f"{program} failed (exit {returncode}): {said}. Try again later; if it persists, ask the "
        "cluster administrators.",
        retry_after=RETRY_AFTER_S,
    )
