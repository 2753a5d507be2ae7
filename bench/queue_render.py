"""`concierge queue` cost on a 10,000-job `squeue --json` document: parse + render, in ms.

The document is generated from the real 22.05 fixture's job object (tests/fixtures/slurm), varied
in id, user, state, reason and GPUs. The comparison is the time `squeue --json` itself takes on
the local Slurm, with `--real-jobs` held jobs submitted for the measurement (0: skip it).
Goal (issue 2): parse + render ≤ 150 ms for 10,000 jobs.

Usage: .venv/bin/python bench/queue_render.py [--jobs 10000] [--real-jobs 500] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from held_jobs import held_jobs

from backends.slurm.backend import SlurmBackend
from backends.slurm.json_formats import parse_squeue_json
from backends.slurm.settings import SlurmSettings
from backends.types import QueueFilter
from bot import text_render as render

GOAL_MS = 150.0
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "slurm" / "squeue-22.05.json"
STATES = [("RUNNING", "None"), ("PENDING", "Resources"), ("PENDING", "Priority"), ("PENDING", "JobHeldUser")]
GRES = ["gres:gpu:a100:2", "gres:gpu:l40s:1", "gres:gpu:h100:8", ""]


def generated_document(count: int) -> str:
    fixture = json.loads(FIXTURE.read_text())
    template = fixture["jobs"][0]
    jobs = []
    for i in range(count):
        job: dict[str, Any] = copy.deepcopy(template)
        state, reason = STATES[i % len(STATES)]
        job.update(
            job_id=100_000 + i,
            name=f"train-{i % 97}",
            user_name=f"user{i % 53}",
            job_state=state,
            state_reason=reason,
            tres_per_node=GRES[i % len(GRES)],
            time_limit=60 + i % 600,
        )
        jobs.append(job)
    fixture["jobs"] = jobs
    return json.dumps(fixture)


class ServedDocument:
    """A CommandRunner that answers squeue with the generated document, so the bench measures
    SlurmBackend.queue itself (parse, filter, sort, statuses) and not a copy of it."""

    command_count = 0

    def __init__(self, document: str) -> None:
        self.document = document

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:
        self.command_count += 1
        return self.document


def timed_ms(action: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def real_squeue_ms(real_jobs: int, repeat: int) -> tuple[int, float] | None:
    if real_jobs <= 0 or shutil.which("squeue") is None:
        return None
    with held_jobs(real_jobs):
        times = timed_ms(
            lambda: subprocess.run(["squeue", "--json"], capture_output=True, check=True), repeat
        )
        printed = subprocess.run(["squeue", "--json"], capture_output=True, check=True).stdout
        listed = len(json.loads(printed)["jobs"])
    return listed, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--real-jobs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    document = generated_document(args.jobs)
    now = datetime.now(UTC)
    backend = SlurmBackend(SlurmSettings(), ServedDocument(document), running_as_root=True)

    def parse_and_render() -> str:
        return render.queue(backend.queue(QueueFilter()), now)

    rows = parse_and_render().count("\n")
    assert rows == args.jobs, rows
    parse_only = statistics.median(timed_ms(lambda: parse_squeue_json(document), args.repeat))
    total = statistics.median(timed_ms(parse_and_render, args.repeat))
    print(f"queue of {args.jobs:,} jobs ({len(document) / 1e6:.1f} MB of squeue --json):")
    print(f"  parse {parse_only:.0f} ms, parse + status + render {total:.0f} ms (median of {args.repeat})")
    verdict = "met" if total <= GOAL_MS else "NOT met"
    print(f"  goal ≤ {GOAL_MS:.0f} ms: {verdict} ({total / GOAL_MS:.2f}× the goal)")
    real = real_squeue_ms(args.real_jobs, args.repeat)
    if real:
        listed, ms = real
        per_job = ms / max(listed, 1)
        print(
            f"  squeue --json itself on the local Slurm: {ms:.0f} ms for {listed:,} jobs "
            f"({per_job:.3f} ms/job → ~{per_job * args.jobs:.0f} ms for {args.jobs:,})"
        )
        print(f"  ratio concierge/squeue at {args.jobs:,} jobs: {total / (per_job * args.jobs):.2f}")


if __name__ == "__main__":
    main()
