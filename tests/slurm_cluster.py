"""The `slurm` fixture: the real single-node Slurm of `scripts/local-slurm.sh`, emptied before each test.

Parametrized indirectly with a driver ("cli", "rest"), its settings make SlurmBackend talk to the
same cluster through the commands or through the local slurmrestd (tokens from `scontrol token`).
Absent (or not root, which `sbatch --uid` and `runuser` need), the tests skip saying how to get it;
with CONCIERGE_REQUIRE_SLURM=1 (CI) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from backends.slurm.settings import SlurmSettings

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / "scripts" / "local-slurm.sh"
NOT_RUNNING = "local Slurm not running: run `sudo scripts/local-slurm.sh up`"
REST_TOKEN_COMMAND = ("scontrol", "token", "username={user}", "lifespan=600")


def _unavailable(reason: str) -> None:
    if os.environ.get("CONCIERGE_REQUIRE_SLURM") == "1":
        pytest.fail(f"{reason}, and CONCIERGE_REQUIRE_SLURM=1 requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_status() -> str | None:
    """None when the local Slurm answers, else why not."""
    if os.geteuid() != 0:
        return "the Slurm tests need root (sbatch --uid, runuser); run them as root"
    try:
        status = subprocess.run(
            [str(LOCAL_SLURM), "status"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{NOT_RUNNING} ({e})"
    if status.returncode != 0:
        return f"{NOT_RUNNING} (status said: {status.stderr.strip() or status.stdout.strip()})"
    return None


@dataclass(frozen=True)
class LocalSlurm:
    settings: SlurmSettings

    def run(self, argv: Sequence[str], stdin: str | None = None, *, as_user: str | None = None) -> str:
        """Runs a Slurm command directly (for what the product cannot express, e.g. --hold)."""
        prefix = ["runuser", "-u", as_user, "--"] if as_user else []
        done = subprocess.run(
            [*prefix, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC", "LC_ALL": "C"},
        )
        return done.stdout

    def wait_launched(self, job_id: str) -> None:
        """Until the job's batch script is running on this node (a process with its SLURM_JOB_ID).

        Cancelling a job whose launch is still in flight leaves the node `mixed`, with nothing in
        the queue, until slurmd's next ping (2-3 minutes here), which stalls the next reset; the
        step showing in `squeue -s` is not enough, it appears before the launch completes.
        """
        marker = f"SLURM_JOB_ID={job_id}\0".encode()

        def running_here() -> bool:
            for environ in Path("/proc").glob("[0-9]*/environ"):
                try:
                    if marker in environ.read_bytes():
                        return True
                except OSError:
                    continue  # the process ended or is not readable
            return False

        self.wait_for(running_here, f"job {job_id}'s batch script to run")

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 40.0) -> None:
        """Polls gently (every 0.5 s) until the scheduler has done what the test needs."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")


def _controller_says_empty() -> bool:
    """No job in the queue and the node idle as the controller itself sees it."""
    plain = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
    queue = subprocess.run(
        ["squeue", "-h", "-o", "%i"], capture_output=True, text=True, env=plain, check=False
    )
    nodes = subprocess.run(
        ["scontrol", "-o", "show", "node"], capture_output=True, text=True, env=plain, check=False
    )
    return (
        queue.returncode == 0
        and not queue.stdout.strip()
        and nodes.returncode == 0
        and all("State=IDLE" in line and "CPUAlloc=0 " in line for line in nodes.stdout.splitlines() if line)
    )


def _reset() -> str | None:
    """Empties the queue with `local-slurm.sh reset`; None when done, else what went wrong.

    reset also waits for `sinfo -o %T` to say `idle`, which on 22.05 can lag minutes behind the
    controller after a busy test (sinfo printed `mixed` while `scontrol show node` said
    State=IDLE, CPUAlloc=0, and the queue was empty). So a reset that times out while the
    controller reports an empty queue and idle nodes counts as done.
    """
    environment = {**os.environ, "CONCIERGE_SLURM_TIMEOUT": "5"}
    done = subprocess.run(
        [str(LOCAL_SLURM), "reset"], capture_output=True, text=True, timeout=120, check=False, env=environment
    )
    deadline = time.monotonic() + 60
    while done.returncode != 0 and time.monotonic() < deadline:
        if _controller_says_empty():
            return None
        time.sleep(0.5)
    if done.returncode == 0:
        return None
    return done.stderr.strip() or done.stdout.strip() or f"exit {done.returncode}"


def driver_settings(driver: str) -> SlurmSettings:
    """Job output goes nowhere unless a test asks for it: the users' homes stay clean."""
    if driver == "rest":
        return SlurmSettings(output_pattern="/dev/null", driver="rest", rest_token_command=REST_TOKEN_COMMAND)
    return SlurmSettings(output_pattern="/dev/null")


@pytest.fixture
def slurm(slurm_status: str | None, request: pytest.FixtureRequest) -> Iterator[LocalSlurm]:
    if slurm_status is not None:
        _unavailable(slurm_status)
    failure = _reset()
    if failure is not None:
        pytest.fail(f"scripts/local-slurm.sh reset failed: {failure}")
    yield LocalSlurm(settings=driver_settings(getattr(request, "param", "cli")))
    # Leave the shared cluster empty for whoever comes next (best effort).
    _reset()
