"""Held jobs on the local Slurm, for benchmarks that need a queue that stays still.

Held jobs never start, so the queue does not change while a benchmark measures it; alice owns
them, as the real product would submit for a person.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def held_jobs(count: int) -> Iterator[list[str]]:
    """Submit `count` held one-GPU jobs as alice; cancel them all on the way out."""
    ids: list[str] = []
    try:
        for _ in range(count):
            out = subprocess.run(
                ["sbatch", "--parsable", "--hold", "--uid=alice", "--gid=alice", "--gres=gpu:a100:1",
                 "--time=5", "--chdir=/tmp", "--output=/dev/null", "--wrap=true"],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            ids.append(out.strip().split(";")[0])
        yield ids
    finally:
        if ids:
            subprocess.run(["scancel", *ids], check=False)
