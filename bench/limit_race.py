"""N submits by one person at the same moment against their GPU limit: how many GPUs are admitted.

Each submitter is its own process with its own store connections and engine, as N CLI runs or bot
replicas would be. Every preview is made first; then a barrier releases all N Submits at once
against the real local Slurm. Goal: admitted GPUs == the limit, exactly (before judge-and-record
became one step per person, 10 parallel 4-GPU submits against a limit of 8 admitted 36 GPUs).

Usage (as root, local Slurm up):
  .venv/bin/python bench/limit_race.py [--submitters 50] [--gpus 1] [--database URL]
Without --database a throw-away SQLite file is used; PostgreSQL: postgresql://postgres@127.0.0.1/DB.
The jobs are alice's `sleep 600`; they are cancelled at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import tempfile
import time
from multiprocessing import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from backends.errors import PolicyDenied
from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from backends.types import Identity
from bot.engine import Concierge
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy

ALICE = Identity(requester="U-BENCH-ALICE", unix_user="alice")
SETTINGS = SlurmSettings(output_pattern="/dev/null")


def submitter(database_url: str, text: str, gate: Barrier, results: Queue[int | str]) -> None:
    """Puts the GPUs this process got admitted (0 when refused, or the error) on `results`."""
    store = Store(database_url)
    try:
        concierge = Concierge(store, {"slurm": SlurmBackend(SETTINGS)}, understand, load_policy(None))
        preview = concierge.prepare(ALICE, text, "bench", check=False)
        gate.wait()
        concierge.submit(preview)
        results.put(preview.plan.footprint.total_gpus)
    except PolicyDenied:
        results.put(0)
    except Exception as e:
        gate.abort()  # the others must not wait for a submitter that is gone
        results.put(f"{type(e).__name__}: {e}")
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submitters", type=int, default=50)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs each submit asks for")
    parser.add_argument("--database", help="store URL (default: a throw-away SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database or f"sqlite:///{Path(scratch) / 'bench.db'}"
        Store(url).migrate()
        limit = load_policy(None).max_gpus_per_user
        text = f"{args.gpus} a100 for 1 hour to run sleep 600"
        gate = multiprocessing.Barrier(args.submitters)
        results: Queue[int | str] = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(target=submitter, args=(url, text, gate, results))
            for _ in range(args.submitters)
        ]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        admitted = [results.get(timeout=300) for _ in workers]
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        subprocess.run(["scancel", "-u", "alice"], check=False)
    errors = [a for a in admitted if isinstance(a, str)]
    if errors:
        print(f"{len(errors)} submitters failed, e.g. {errors[0]}")
    total = sum(a for a in admitted if isinstance(a, int))
    print(f"database: {url.split(':', 1)[0]}; {args.submitters} parallel submits of {args.gpus} GPU(s)")
    jobs = sum(1 for a in admitted if isinstance(a, int) and a > 0)
    print(f"admitted: {jobs} jobs, {total} GPUs; limit {limit} GPUs")
    print(f"admitted/limit: {total / limit:.2f} (goal 1.00)  wall: {elapsed:.1f} s")


if __name__ == "__main__":
    main()
