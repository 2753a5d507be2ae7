"""Parser throughput: requests per second of the deterministic grammar over an eval file.

Goal (issue 2): at least 5,000 requests/s on the development machine (2 cores).
Usage: .venv/bin/python bench/parser_throughput.py [FILE.jsonl] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bot.understanding.grammar import understand

GOAL_PER_SECOND = 5_000
DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "eval" / "requests.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    texts = [json.loads(line)["text"] for line in args.file.read_text().splitlines() if line.strip()]
    for text in texts:  # warm caches the way a long-running bot would be warm
        understand(text)
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        for text in texts:
            understand(text).to_contract()
        done += len(texts)
    elapsed = time.perf_counter() - started
    rate = done / elapsed
    print(f"parser throughput: {rate:,.0f} requests/s")
    print(f"  {done:,} parses of the {len(texts)} texts in {args.file.name}")
    print(f"  per request: {1e6 / rate:.1f} µs")
    print(f"  goal ≥ {GOAL_PER_SECOND:,}/s: {rate / GOAL_PER_SECOND:.1f}× the goal")


if __name__ == "__main__":
    main()
