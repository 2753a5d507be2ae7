"""What routing through the language model adds to understanding one message, with a model that costs 0 ms.

The real vLLM takes hundreds of milliseconds; that is the model's cost, not ours, and the fast path
exists to avoid it. This measures our own cost: the routed pipeline (`RoutedUnderstanding` with the
real LangChain/openai client) against the grammar alone, over an evaluation file, with the fake
vLLM (tests/openai_fake) answering each request at once by echoing the grammar's hint. The fake runs
in its own process, as vLLM would, so its handling does not compete with the measured code for the
interpreter.

Each text is understood `--rounds` times by each pipeline, interleaved; a text's time is its median
over the rounds, and its added latency is routed minus grammar-only. Reported: the added latency per
request at p50 (goal, issue 5: ≤ 5 ms) and p95, the share of requests that skip the model (fast
path), and, for scale, what one model call adds when it is made (the "model only" pipeline: every
text through the model).

Usage: .venv/bin/python bench/llm_routing_overhead.py [--file ../shared/eval/requests.jsonl ...] [--rounds 15]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

# Run as `python bench/llm_routing_overhead.py`: the repo root is not on sys.path then, and the fake
# vLLM lives in tests/ (not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.llm.client import LlmReader
from bot.llm.evaluation import percentile
from bot.llm.prompts import HINT_LABEL
from bot.llm.routing import Routed, RoutedUnderstanding
from bot.llm.settings import LlmSettings
from bot.understanding.evaluation import load_cases
from tests.openai_fake import EchoHint, FakeVllm

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FILE = REPO.parent / "shared/eval/requests.jsonl"
FORK = multiprocessing.get_context("fork")
GOAL_P50_MS = 5.0


def serve_fake_vllm(channel: Connection) -> None:
    """Child process: the fake vLLM echoing the hint at once, until the parent says stop."""
    with FakeVllm(default=EchoHint(HINT_LABEL)) as fake:
        channel.send(fake.base_url)
        channel.recv()
        channel.send(len(fake.completions))


def median_ms(understand: Callable[[str], Routed], text: str, rounds: int) -> tuple[float, Routed]:
    times = []
    routed = understand(text)
    for _ in range(rounds):
        started = time.perf_counter()
        routed = understand(text)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), routed


def added_ms(
    texts: list[str], grammar: Callable[[str], Routed], routed: Callable[[str], Routed], rounds: int
) -> tuple[list[float], list[Routed]]:
    added, answers = [], []
    for text in texts:
        baseline, _ = median_ms(grammar, text, rounds)
        measured, answer = median_ms(routed, text, rounds)
        added.append(measured - baseline)
        answers.append(answer)
    return added, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, action="append", help="evaluation JSONL (repeatable)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    files: list[Path] = args.file or [DEFAULT_FILE]
    texts = [case.text for path in files for case in load_cases(path)]

    ours, theirs = FORK.Pipe()
    server = FORK.Process(target=serve_fake_vllm, args=(theirs,), daemon=True)
    server.start()
    base_url = ours.recv()
    try:
        reader = LlmReader.from_settings(LlmSettings(url=base_url, timeout_s=5))
        grammar = RoutedUnderstanding(None).understand
        routed = RoutedUnderstanding(reader).understand
        model_only = RoutedUnderstanding(reader, fast_path=False, fallback=False).understand
        for text in texts[:5]:  # warm the client's connection pool and LangChain's caches
            model_only(text)
        added, answers = added_ms(texts, grammar, routed, args.rounds)
        per_call, called = added_ms(texts, grammar, model_only, max(3, args.rounds // 3))
    finally:
        ours.send("stop")
        completions = ours.recv()
        server.join(5)

    fast = sum(1 for a in answers if not a.model_called)
    fallbacks = sum(1 for a in answers + called if a.source == "grammar_fallback")
    p50, p95 = percentile(added, 0.50), percentile(added, 0.95)
    print(f"{len(texts)} requests from {', '.join(str(f) for f in files)}; {args.rounds} rounds each")
    print(f"fast path (no model call): {fast}/{len(texts)} ({fast / len(texts):.1%})")
    print(f"added latency per request, routed - grammar only: p50 {p50:.3f} ms, p95 {p95:.3f} ms")
    print(f"  goal p50 <= {GOAL_P50_MS:g} ms: {'met' if p50 <= GOAL_P50_MS else 'NOT met'}")
    print(
        "one model call (0 ms model), model only - grammar only: "
        f"p50 {percentile(per_call, 0.50):.2f} ms, p95 {percentile(per_call, 0.95):.2f} ms"
    )
    print(f"fake vLLM answered {completions} completions; fallbacks {fallbacks} (0 expected)")


if __name__ == "__main__":
    main()
