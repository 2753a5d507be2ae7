"""A person's path through the `concierge` CLI on the real local Slurm, with a real SQLite store.

Each test runs the installed console script in a subprocess, as a person would, with the
database in a temporary directory. The tests run as root and act for alice and bob with `--as`,
which is how the bot submits for a person (`sbatch --uid`); one test runs the CLI as alice herself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import CONCIERGE, Cli, cli_env, squeue_field, wait_for
from tests.helpers.terminal import answered_at_prompt
from tests.slurm_cluster import REST_TOKEN_COMMAND

pytestmark = pytest.mark.slurm


@pytest.fixture
def cli(slurm: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cli]:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # alice runs the CLI herself in one test
    # Parametrized "rest": the same CLI reaches Slurm through the local slurmrestd, by its settings.
    rest = {"SLURM__DRIVER": "rest", "SLURM__REST_TOKEN_COMMAND": json.dumps(REST_TOKEN_COMMAND)}
    driver = rest if getattr(request, "param", "cli") == "rest" else {}
    yield Cli(cli_env(tmp_path, f"sqlite:///{data / 'concierge.db'}", **driver))


@pytest.mark.parametrize("cli", ["cli", "rest"], indirect=True)
def test_submit_runs_as_the_person_and_is_recorded(cli: Cli) -> None:
    job = cli.submit("alice", "2 A100s for 10 minutes to run sleep 120")
    assert squeue_field(job, "%u") == "alice"
    wait_for(lambda: squeue_field(job, "%T") == "RUNNING")

    tracked = cli("track", "--once")
    assert tracked.code == 0, tracked.err
    assert f"job {job}: running" in tracked.out

    status = cli("--as", "alice", "status", job)
    assert status.code == 0, status.err
    assert "RUNNING" in status.out and "alice" in status.out
    assert "a100×2" in status.out
    assert "running" in status.out.split("Requested by", 1)[1]  # the recorded history

    history = cli("--as", "alice", "history")
    assert "running" in history.out and job in history.out


def test_pending_job_is_explained_with_alternatives(cli: Cli) -> None:
    running = cli.submit("alice", "2 a100 for 20 minutes: sleep 300")
    waiting = cli.submit("alice", "2 a100 for 20 minutes: sleep 300")
    wait_for(lambda: squeue_field(waiting, "%r") == "Resources")
    # The start estimate comes with the next backfill cycle (bf_interval=5 s on the local Slurm).
    wait_for(lambda: squeue_field(waiting, "%S") not in {"N/A", ""})

    why = cli("--as", "alice", "why", waiting)
    assert why.code == 0, why.err
    assert "Resources" in why.out
    assert "l40s" in why.out.lower()  # two l40s are free: the alternative that starts now
    assert "Expected start" in why.out

    queue = cli("--as", "alice", "queue", "--mine")
    lines = {line.split()[0]: line for line in queue.out.splitlines()[1:]}
    assert "RUNNING" in lines[running] and "PENDING" in lines[waiting]
    assert "Resources" in lines[waiting] and "a100×2" in lines[waiting]

    asked = cli("--as", "alice", "ask", f"why is {waiting} pending?")
    assert asked.code == 0 and "l40s" in asked.out.lower()


def test_only_the_owner_cancels(cli: Cli) -> None:
    job = cli.submit("alice", "1 a100 for 10 minutes to run sleep 200")

    refused = cli("--as", "bob", "cancel", job)
    assert refused.code == 3
    assert "alice" in refused.err and "Traceback" not in refused.err
    assert squeue_field(job, "%T") in {"PENDING", "RUNNING"}

    done = cli("--as", "alice", "cancel", job)
    assert done.code == 0, done.err
    wait_for(lambda: squeue_field(job, "%T") in {"", "CANCELLED", "COMPLETING"})

    bobs = cli("--as", "bob", "history")
    assert f"cancel {job}" in bobs.out and "denied" in bobs.out and "belongs to alice" in bobs.out


def test_rejections_are_specific_and_stored(cli: Cli) -> None:
    bad_partition = cli("--as", "alice", "ask", "--yes", "1 a100 for 10 min, partition nope, run true")
    assert bad_partition.code == 5, bad_partition.err
    assert "nope" in bad_partition.err and "Traceback" not in bad_partition.err

    nonsense = cli("--as", "alice", "ask", "--yes", "make me a sandwich")
    assert nonsense.code == 2
    assert "Traceback" not in nonsense.err

    too_big = cli("--as", "alice", "ask", "--yes", "16 a100 for 100 hours to run python big.py")
    assert too_big.code == 3
    assert "16" in too_big.err

    history = cli("--as", "alice", "history", "--limit", "10")
    assert "make me a sandwich" in history.out
    assert history.out.count("invalid") >= 1 and "denied" in history.out and "failed" in history.out


def test_dry_run_json_follows_the_contract(cli: Cli) -> None:
    result = cli("--as", "alice", "ask", "--dry-run", "--json", "one l40s for 2h: python train.py --epochs 3")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert set(printed) >= {"request", "decision", "backend", "plan", "warnings"}
    assert printed["backend"] == "slurm"
    assert printed["decision"]["verdict"] == "allow"
    script = printed["plan"]["sbatch_script"]
    assert "#SBATCH --gres=gpu:l40s:1" in script and "#SBATCH --time=" in script
    assert script.rstrip().endswith("python train.py --epochs 3")
    assert printed["request"]["time_limit_minutes"] == 120
    assert squeue_field_all_users_count() == 0  # nothing was submitted


def squeue_field_all_users_count() -> int:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout
    return len(out.split())


def test_free_reads_the_cluster(cli: Cli) -> None:
    result = cli("free")
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines()[1:]]
    seen = {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
    assert seen[("gpu", "a100")] == (2, 2)
    assert seen[("gpu", "l40s")] == (2, 2)

    only = cli("free", "--type", "l40s")
    assert "a100" not in only.out and "l40s" in only.out


def test_the_person_runs_the_cli_themselves(cli: Cli) -> None:
    """Not root acting for alice: alice's own CLI, with her own store, submits as her."""
    # Her home in /tmp: pytest's tmp_path lies under root's 0700 directory.
    with tempfile.TemporaryDirectory(prefix="alice-home-") as home:
        os.chmod(home, 0o755)
        shutil.chown(home, "alice")
        cli.env |= {"HOME": home, "CONCIERGE_DATABASE_URL": f"sqlite:///{home}/concierge.db"}
        result = cli("ask", "--yes", "1 l40s for 5 minutes to run sleep 60", user="alice")
        assert result.code == 0, result.err
        job = re.search(r"Submitted job (\d+)", result.out)
        assert job, result.out
        assert squeue_field(job.group(1), "%u") == "alice"
        history = cli("history", user="alice")
        assert "submitted" in history.out and job.group(1) in history.out, history.out


def test_unreachable_slurm_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "no-slurm-here"
    empty.mkdir()
    cli.env["CONCIERGE_SLURM__BIN_DIR"] = str(empty)
    result = cli("--as", "alice", "queue")
    assert result.code == 6, result.err
    assert "Traceback" not in result.err


def run_in_terminal(cli: Cli, args: list[str], answer: str) -> str:
    """Run the CLI on a pseudo-terminal, answer its prompt, and return everything it printed."""
    return answered_at_prompt([CONCIERGE, *args], cli.env, answer, b"Submit this job?", timeout=60)


def test_the_prompt_asks_before_submitting(cli: Cli) -> None:
    declined = run_in_terminal(cli, ["--as", "alice", "ask", "1 l40s for 10 minutes to run sleep 30"], "n")
    assert "#SBATCH --gres=gpu:l40s:1" in declined and "Not submitted." in declined
    assert squeue_field_all_users_count() == 0

    accepted = run_in_terminal(cli, ["--as", "alice", "ask", "1 l40s for 10 minutes to run sleep 30"], "y")
    assert re.search(r"Submitted job \d+", accepted), accepted

    history = cli("--as", "alice", "history")
    assert "declined" in history.out and "submitted" in history.out
