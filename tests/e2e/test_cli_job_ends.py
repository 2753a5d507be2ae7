"""What a person is shown before a job runs and after it ends, through the CLI on the real local Slurm.

The preview: one line saying what runs where and as whom, the environment it runs in, the sbatch
script, then the policy's verdict. The end: the exit code in words, the output file and its last
lines (read as the job's owner, shown only to them), in `status` and `history`. The README's first
example is submitted exactly as written, and its `python` spelling (which Debian does not have)
is what the failing job runs.
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import Cli, cli_env, wait_for

pytestmark = pytest.mark.slurm
README = Path(__file__).parents[2] / "README.md"
HOME = Path(pwd.getpwnam("alice").pw_dir)


def readme_request() -> str:
    """The request of the README's first `concierge ask` example."""
    match = re.search(r'^concierge ask "([^"]+)"', README.read_text(), re.MULTILINE)
    assert match, 'README.md has no `concierge ask "…"` example'
    return match.group(1)


def slurm_state(job: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "--states=all", "-j", job, "-o", "%T"], capture_output=True, text=True, check=False
    ).stdout.strip()


def ended(cli: Cli, job: str) -> None:
    """Wait for the job's end, then let the tracker record it (with how it ended)."""
    wait_for(lambda: slurm_state(job) in ("COMPLETED", "FAILED"), timeout=30)
    tracked = cli("track", "--once")
    assert tracked.code == 0, tracked.err


@pytest.fixture
def cli(slurm: None, tmp_path: Path) -> Cli:
    return Cli(cli_env(tmp_path))


@pytest.fixture
def train_py() -> Iterator[Path]:
    """alice's train.py in her home, where her jobs start; what they write there goes after the test."""
    script = HOME / "train.py"
    script.write_text("for epoch in range(1, 4):\n    print(f'epoch {epoch} done')\n")
    os.chown(script, pwd.getpwnam("alice").pw_uid, pwd.getpwnam("alice").pw_gid)
    outputs = set(HOME.glob("concierge-train.py-*.out"))
    yield script
    script.unlink(missing_ok=True)
    for written in set(HOME.glob("concierge-train.py-*.out")) - outputs:  # by this test's jobs
        written.unlink()


def test_the_readme_example_is_previewed_then_runs_as_written(cli: Cli, train_py: Path) -> None:
    request = readme_request()
    assert "python3 " in request  # Debian has no `python`
    preview = cli("--as", "alice", "ask", "--dry-run", request)
    assert preview.code == 0, preview.err
    lines = preview.out.splitlines()
    assert re.fullmatch(
        r"Request \w{8} on slurm: 2 × A100 for 4 h .*running `python3 train.py`, as alice", lines[0]
    )
    assert lines[1].startswith("The job runs with alice's login environment")
    assert lines[2] == "--- sbatch script ---" and "#SBATCH --export=NONE" in lines
    assert lines.index("#SBATCH --export=NONE") < lines.index("Policy: allow")

    job = cli.submit("alice", request)
    ended(cli, job)
    status = cli("--as", "alice", "status", job)
    assert "COMPLETED" in status.out and "It exited with code 0." in status.out
    assert f"Output file: {HOME}/concierge-train.py-{job}.out" in status.out
    assert "  | epoch 3 done" in status.out


def test_a_failed_job_is_explained_to_its_owner(cli: Cli, train_py: Path) -> None:
    job = cli.submit("alice", readme_request().replace("python3 ", "python "))
    ended(cli, job)
    output = HOME / f"concierge-train.py-{job}.out"

    status = cli("--as", "alice", "status", job)
    assert status.code == 0, status.err
    assert "FAILED" in status.out and "It exited with code 127: the shell could not find" in status.out
    assert f"Output file: {output}" in status.out
    (tail,) = [line for line in status.out.splitlines() if line.startswith("    | ")]
    assert tail.endswith("python: command not found")

    history = cli("--as", "alice", "history")
    assert "↳ failed: It exited with code 127" in history.out and str(output) in history.out

    # Someone else sees how it ended, not what it printed.
    other = cli("--as", "bob", "status", job)
    assert "exited with code 127" in other.out and "| " not in other.out

    # The file is read as alice could read it: a link to a file she may not read shows nothing.
    output.unlink()
    output.symlink_to("/etc/shadow")
    try:
        guarded = cli("--as", "alice", "status", job)
    finally:
        output.unlink()
    assert "Its last lines are not shown: alice may not read it." in guarded.out
    assert "root:" not in guarded.out


def test_a_job_submitted_with_plain_sbatch_is_explained_to_its_owner(cli: Cli) -> None:
    script = "#!/bin/bash\n#SBATCH --time=1 --output=plain-%j.out\npython train.py\n"
    argv = ["sbatch", "--parsable", "--uid=alice", "--gid=alice", f"--chdir={HOME}", "--export=NONE"]
    job = subprocess.run(argv, input=script, capture_output=True, text=True, check=True).stdout.strip()
    wait_for(lambda: slurm_state(job) == "FAILED", timeout=30)
    try:
        mine, theirs = cli("--as", "alice", "status", job), cli("--as", "bob", "status", job)
    finally:
        (HOME / f"plain-{job}.out").unlink(missing_ok=True)
    assert "Not submitted through the concierge" in mine.out
    assert "It exited with code 127" in mine.out and "python: command not found" in mine.out
    assert "It exited with code 127" in theirs.out and "| " not in theirs.out
