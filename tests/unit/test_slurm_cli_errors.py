"""Slurm's error messages (as printed by 22.05 here) become our errors with a next step."""

from __future__ import annotations

import pytest

from backends.errors import BackendRejected, BackendUnavailable, ConciergeError, JobNotFound, PermissionDenied
from backends.slurm.cli_errors import translate_failure

FAILED = "sbatch: error: Batch job submission failed: "
DOWN = "Unable to contact slurm controller (connect failure)"


@pytest.mark.parametrize(
    ("program", "stderr", "kind", "advice"),
    [
        (
            "sbatch",
            f"sbatch: error: invalid partition specified: nope\n{FAILED}Invalid partition name specified",
            BackendRejected,
            "partitions `concierge free` lists",
        ),
        (
            "sbatch",
            "sbatch: error: Invalid generic resource (gres) specification",
            BackendRejected,
            "GPU type",
        ),
        (
            "sbatch",
            f"{FAILED}Requested node configuration is not available",
            BackendRejected,
            "fewer per node",
        ),
        (
            "sbatch",
            f"{FAILED}Requested time limit is invalid (missing or exceeds some limit)",
            BackendRejected,
            "shorter time",
        ),
        (
            "sbatch",
            f"{FAILED}Invalid account or account/partition combination specified",
            BackendRejected,
            "account you belong to",
        ),
        ("sbatch", f"{FAILED}Invalid qos specification", BackendRejected, "QOS"),
        ("sbatch", "allocation failure: Invalid partition name specified", BackendRejected, "partition"),
        ("sbatch", "sbatch: error: Invalid --time specification", BackendRejected, "D-HH:MM:SS"),
        ("squeue", f"slurm_load_jobs error: {DOWN}", BackendUnavailable, "Try again"),
        ("sbatch", f"allocation failure: {DOWN}", BackendUnavailable, "munge"),
        ("sinfo", "sinfo: error: Munge decode failed: Expired credential", BackendUnavailable, "munge"),
        ("squeue", "slurm_load_jobs error: Invalid job id specified", JobNotFound, "forgets finished jobs"),
        (
            "scancel",
            "scancel: error: Kill job error on job id 40: Access/permission denied",
            PermissionDenied,
            "owner",
        ),
        ("scancel", "scancel: error: something new", BackendRejected, "something new"),
        ("sinfo", "sinfo: error: something new", BackendUnavailable, "something new"),
    ],
)
def test_translation(program: str, stderr: str, kind: type[ConciergeError], advice: str) -> None:
    error = translate_failure(program, 1, stderr)
    assert type(error) is kind
    assert advice in error.message
    # Slurm's own words are kept.
    assert stderr.splitlines()[-1].strip() in error.message


def test_unavailable_suggests_a_retry_delay() -> None:
    error = translate_failure("squeue", 1, DOWN)
    assert isinstance(error, BackendUnavailable) and error.retry_after


def test_empty_stderr_still_says_something() -> None:
    assert "no message" in translate_failure("sbatch", 1, "").message
