"""`scripts/demo.sh` as the README runs it, with its stderr kept in a log file: the log keeps every
submission it showed (a `tee /dev/stderr` would truncate it), and the history it ends with lists
the job requests, not the questions asked along the way."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo.sh"


@pytest.mark.slurm
def test_the_demo_keeps_its_log_and_ends_with_the_job_requests(slurm: None, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")} | {"HOME": str(tmp_path)}
    log = tmp_path / "demo.log"
    with log.open("w") as stderr:
        done = subprocess.run([DEMO], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=280)
    assert done.returncode == 0, log.read_text()[-2000:]
    kept = log.read_text()
    # Both submissions, then bob's refused cancel (on stderr after them): nothing overwritten.
    assert kept.count("Submitted job") == 2
    assert kept.rindex("Submitted job") < kept.rindex("error: ") and "only its owner" in kept, kept[-2000:]
    history = done.stdout.rsplit("history", 1)[1].splitlines()[2:]
    texts = [row.split(None, 5)[5] for row in history if not row.lstrip().startswith("↳")]
    assert sorted(texts)[:2] == ["2 A100s for 30 minutes to run sleep 600"] * 2
    assert all(text.startswith(("2 A100s", "cancel ")) for text in texts), texts  # no status, why, queue
