"""How jobs ended and faults of the cluster itself, on the real local Slurm with slurmdbd (issue 15).

- Jobs that left the queue: their end comes from accounting (one sacct, or slurmdbd's REST), with
  the exit code, the signal and the GPU-hours; `vanished` only for a job neither knows.
  `ForgetfulQueue` is the real backend whose queue listing leaves out ended jobs, as squeue does
  MinJobAge (300 s here) after their end; accounting answering is the real slurmdbd.
- slurmctld restarted (state kept, `local-slurm.sh restart`) while jobs are tracked and right after
  a submit: nothing vanishes, nothing is recorded twice.
- slurmdbd down: jobs are still submitted and tracked; what only accounting knows waits, and the
  tracker says plainly that accounting is unavailable. munge down: the CLI says so, exit code 6.
Each fault is undone in a `finally` (`local-slurm.sh up` starts only what is missing, the queue kept),
so later tests find the cluster healthy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from backends.job_accounting import ACCOUNTING_UNAVAILABLE
from backends.slurm.backend import SlurmBackend
from backends.types import Identity, JobRef, JobState, JobStatus
from bot.engine import Concierge
from bot.store import Store
from bot.text_render import ended
from bot.tracker import VANISHED_REASON, PollResult, Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.faulty_slurm import FaultySlurm
from tests.helpers.cli import Cli, cli_env
from tests.slurm_cluster import LOCAL_SLURM, LocalSlurm

pytestmark = pytest.mark.slurm

ALICE = Identity(requester="U-ALICE", unix_user="alice")
POLICY = load_policy(None)
STATE_DIR = Path(os.environ.get("CONCIERGE_SLURM_DIR", "/var/lib/concierge-slurm"))
EXIT_3 = "1 a100 for 10 minutes to run sh -c 'exit 3'"
KILLED = "1 a100 for 10 minutes to run sh -c 'kill -9 $PPID'"  # the batch script itself is killed
SLEEP_2 = "1 a100 for 10 minutes to run sleep 2"
SLEEP_600 = "1 a100 for 10 minutes to run sleep 600"


class ForgetfulQueue(SlurmBackend):
    """The real backend, its queue listing without ended jobs (squeue after MinJobAge)."""

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        return [status for status in super().statuses(refs) if not status.state.is_final]


def _local_slurm(command: str) -> None:
    done = subprocess.run(
        [str(LOCAL_SLURM), command], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"local-slurm.sh {command}: {done.stderr[-2000:]}"


def _running(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:
        return False


def _stop(pidfile: Path) -> None:
    """SIGTERM the daemon of a pid file and wait until it is gone (a zombie counts as gone)."""
    pid = int(pidfile.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), f"{pidfile} ({pid}) did not stop"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    yield store


def _submit(store: Store, backend: SlurmBackend, text: str) -> JobRef:
    concierge = Concierge(store, {"slurm": backend}, understand, POLICY)
    return concierge.submit(concierge.prepare(ALICE, text, "cli", check=False))


def _recorded(store: Store, ref: JobRef) -> list[JobState]:
    record = store.request_for_job(ref)
    assert record is not None
    return [change.state for change in record.states]


def _squeue_says(slurm: LocalSlurm, refs: Sequence[JobRef], *states: str) -> bool:
    said = slurm.run(["squeue", "-h", "--states=all", "-o", "%i %T"]).split("\n")
    seen = dict(line.split(" ", 1) for line in said if line)
    return all(seen.get(ref.job_id) in states for ref in refs)


@pytest.mark.parametrize("slurm", ["cli", "rest"], indirect=True)
def test_jobs_that_left_the_queue_end_as_accounting_says(slurm: LocalSlurm, store: Store) -> None:
    backend = ForgetfulQueue(slurm.settings)
    failed, killed, done = (_submit(store, backend, text) for text in (EXIT_3, KILLED, SLEEP_2))
    gone = JobRef(backend="slurm", job_id="987654")  # neither the queue nor accounting knows it
    store.record_submission(store.new_request("alice", "cli", "a job the cluster never had"), gone)
    refs = [failed, killed, done]
    slurm.wait_for(lambda: _squeue_says(slurm, refs, "COMPLETED", "FAILED"), "the three jobs to end")
    slurm.wait_for(
        lambda: all(s.state.is_final for s in backend.ended_jobs(refs).statuses),
        "slurmdbd to record the ends",
    )

    before = backend.runner.command_count
    result = Tracker(store, {"slurm": backend}).poll_once()
    assert backend.runner.command_count - before == 2  # squeue + ONE sacct for all that left the queue
    by_id = {t.ref.job_id: t for t in result.transitions}
    assert by_id[failed.job_id].state is JobState.FAILED
    assert by_id[killed.job_id].state is JobState.FAILED
    assert by_id[done.job_id].state is JobState.COMPLETED
    assert (by_id[gone.job_id].state, by_id[gone.job_id].reason) == (JobState.VANISHED, VANISHED_REASON)
    assert result.accounting_unavailable == ()

    killed_ending, done_ending = by_id[killed.job_id].ending, by_id[done.job_id].ending
    assert done_ending is not None and done_ending.elapsed_seconds is not None
    assert done_ending.elapsed_seconds >= 2 and done_ending.gpu_hours == round(
        done_ending.elapsed_seconds / 3600, 4
    )
    status_lines = ended(JobState.COMPLETED, done_ending)
    assert f"It ran {done_ending.elapsed_seconds} s, under 0.01 GPU-hours allocated" in "\n".join(
        status_lines
    )
    if slurm.settings.driver == "cli":  # 22.05's REST says exit code 0 for every job: left unknown there
        assert "It exited with code 3." in ended(JobState.FAILED, by_id[failed.job_id].ending)
        assert killed_ending is not None and killed_ending.signal == signal.SIGKILL
        assert "It was killed by signal 9 (SIGKILL)." in ended(JobState.FAILED, killed_ending)
    else:
        failed_ending = by_id[failed.job_id].ending
        assert failed_ending is not None and failed_ending.exit_code is None

    again = Tracker(store, {"slurm": backend}).poll_once()  # everything ended: nothing twice
    assert again.transitions == () and again.tracked == 0
    assert _recorded(store, failed)[-1] is JobState.FAILED
    assert _recorded(store, failed).count(JobState.FAILED) == 1


def test_a_controller_restart_keeps_the_tracked_jobs(slurm: LocalSlurm, store: Store) -> None:
    backend = SlurmBackend(slurm.settings)
    running = _submit(store, backend, SLEEP_600)
    slurm.wait_launched(running.job_id)
    tracker = Tracker(store, {"slurm": backend})
    tracker.poll_once()
    stopped: list[PollResult] = []

    def restart_with_a_poll_while_down(ref: JobRef) -> None:
        """Right after sbatch answered, before anyone recorded the job (a restart during a submit):
        the controller stops, the tracker polls while it is down, then it starts with its state."""
        try:
            _stop(STATE_DIR / "run" / "slurmctld.pid")
            stopped.append(tracker.poll_once())  # cannot be asked: nothing recorded, nothing lost
        finally:
            _local_slurm("restart")

    during = _submit(store, FaultySlurm(backend, after=restart_with_a_poll_while_down), SLEEP_600)
    assert stopped[0].unavailable == ("slurm",) and stopped[0].transitions == ()
    slurm.wait_for(lambda: _squeue_says(slurm, [running, during], "RUNNING"), "both jobs to run again")

    after = tracker.poll_once()
    assert {(t.ref.job_id, t.state) for t in after.transitions} == {(during.job_id, JobState.RUNNING)}
    assert tracker.poll_once().transitions == ()
    backend.cancel(running, ALICE)
    backend.cancel(during, ALICE)
    slurm.wait_for(lambda: _squeue_says(slurm, [running, during], "CANCELLED"), "the cancels")
    ends = tracker.poll_once()
    assert {(t.ref.job_id, t.state) for t in ends.transitions} == {
        (running.job_id, JobState.CANCELLED),
        (during.job_id, JobState.CANCELLED),
    }
    assert _recorded(store, running) == [JobState.RUNNING, JobState.CANCELLED]
    assert _recorded(store, during) == [JobState.RUNNING, JobState.CANCELLED]


def test_with_slurmdbd_down_jobs_run_and_what_only_accounting_knows_waits(
    slurm: LocalSlurm, store: Store
) -> None:
    backend = ForgetfulQueue(slurm.settings)
    tracker = Tracker(store, {"slurm": backend})
    try:
        _stop(STATE_DIR / "run" / "slurmdbd.pid")
        failed = _submit(store, backend, EXIT_3)  # slurmctld queues the records for slurmdbd
        slurm.wait_for(lambda: _squeue_says(slurm, [failed], "FAILED"), "the job to fail")
        waiting = tracker.poll_once()
        assert waiting.transitions == () and waiting.unavailable == ()
        (why,) = waiting.accounting_unavailable
        assert why.startswith(f"slurm: {ACCOUNTING_UNAVAILABLE} (sacct: ") and "slurmdbd is running" in why
        assert _recorded(store, failed) == []  # not vanished: asked again once accounting is back
    finally:
        _local_slurm("up")  # slurmdbd alone; the queue stays
    slurm.wait_for(
        lambda: any(s.state.is_final for s in backend.ended_jobs([failed]).statuses),
        "slurmctld to send slurmdbd the job's end",
    )
    (end,) = tracker.poll_once().transitions
    assert end.state is JobState.FAILED and end.ending is not None
    assert end.ending.exit_code == 3 and tracker.poll_once().transitions == ()


def test_with_munge_down_the_cli_says_so(slurm: LocalSlurm, tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path))
    try:
        _stop(Path("/run/munge/munged.pid"))
        said = cli("--as", "alice", "queue")
    finally:
        _local_slurm("up")  # munged again; slurmctld kept
    assert said.code == 6, said.err  # BackendUnavailable
    assert "MUNGE, which proves who is asking, is not answering" in said.err
    assert "Did you start munged?" in said.err and "start munged" in said.err
