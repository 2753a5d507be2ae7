"""How long `concierge --help` and `concierge parse "…"` take to start, beside `python -c pass`.

Each command runs as the installed entry point would (`.venv/bin/concierge`), in a fresh process,
`--runs` times; the best run counts (start-up has no useful mean on a busy machine). Prints the
seconds of each, its ratio to the bare interpreter, and the goal (≤ 0.25 s, issue 12). The modules
each imports are held to a list by tests/unit/test_cli_startup.py; `python -X importtime` shows why.

    .venv/bin/python bench/cli_startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

GOAL_S = 0.25
BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "concierge --help": [str(BIN / "concierge"), "--help"],
    'concierge parse "2 a100 for 4 hours …"': [
        str(BIN / "concierge"),
        "parse",
        "2 a100 for 4 hours to run python train.py",
    ],
}


def best_of(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    bare = best_of(COMMANDS["python -c pass"], runs)
    print(f"best of {runs}; goal ≤ {GOAL_S:.2f} s")
    for name, argv in COMMANDS.items():
        seconds = bare if argv[0] == sys.executable else best_of(argv, runs)
        verdict = "" if argv[0] == sys.executable else ("  ok" if seconds <= GOAL_S else "  over the goal")
        print(f"{name:40} {seconds:6.3f} s  {seconds / bare:5.1f}× python -c pass{verdict}")


if __name__ == "__main__":
    main()
