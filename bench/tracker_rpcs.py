"""Tracker cost in slurmctld RPCs per poll cycle, read from `sdiag` deltas on the real local Slurm.

Submits N held jobs as alice (held, so nothing runs and the queue stays still), tracks them in a
throw-away SQLite store, and counts the controller RPCs of one `Tracker.poll_once()` for N = 1 and
N = 200. The baseline is naive per-job polling (`squeue -j ID` for each job).
Goal (issue 2): the tracker's count is the same for 1 and 200 jobs (O(1) per poll).

Usage (as root, local Slurm up): .venv/bin/python bench/tracker_rpcs.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from held_jobs import held_jobs

from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from backends.types import JobRef
from bot.store import Store
from bot.tracker import Tracker

RPC_LINE = re.compile(r"^\s+(\w+)\s+\(\s*\d+\)\s+count:(\d+)")


def controller_rpcs() -> dict[str, int]:
    """RPC counts by message type, from sdiag (the sdiag call itself is excluded)."""
    out = subprocess.run(["sdiag"], check=True, capture_output=True, text=True).stdout
    section = out.split("by message type", 1)[1].split("by user", 1)[0]
    counts = {}
    for line in section.splitlines():
        m = RPC_LINE.match(line)
        if m and m.group(1) != "REQUEST_STATS_INFO":
            counts[m.group(1)] = int(m.group(2))
    return counts


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    changed = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {k: v for k, v in changed.items() if v}


def measure(tracker: Tracker) -> tuple[int, dict[str, int]]:
    before = controller_rpcs()
    tracker.poll_once()
    changed = delta(before, controller_rpcs())
    return sum(changed.values()), changed


def naive(ids: list[str]) -> int:
    before = controller_rpcs()
    for job_id in ids:
        subprocess.run(["squeue", "-h", "-j", job_id], check=False, capture_output=True)
    return sum(delta(before, controller_rpcs()).values())


def track(store: Store, ids: list[str]) -> None:
    for job_id in ids:
        request_id = store.new_request("alice", "bench", "bench job")
        store.record_submission(request_id, JobRef(backend="slurm", job_id=job_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    backend = SlurmBackend(SlurmSettings())
    rows = []
    with held_jobs(args.jobs) as all_ids:
        for n in (1, args.jobs):
            with tempfile.TemporaryDirectory() as tmp:
                store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
                store.migrate()
                track(store, all_ids[:n])
                tracker = Tracker(store, {"slurm": backend})
                tracker.poll_once()  # first poll records the initial states
                cost, by_type = measure(tracker)
                rows.append((n, cost, by_type))
        baseline = naive(all_ids)
    for n, cost, by_type in rows:
        print(f"tracker poll, {n:>4} tracked jobs: {cost} slurmctld RPCs  {by_type}")
    print(f"naive per-job squeue, {args.jobs} jobs: {baseline} slurmctld RPCs (baseline)")
    one, many = rows[0][1], rows[-1][1]
    verdict = "O(1): same count" if one == many else "NOT O(1)"
    print(f"ratio naive/tracker at {args.jobs} jobs: {baseline / max(many, 1):.0f}×; {verdict}")


if __name__ == "__main__":
    main()
