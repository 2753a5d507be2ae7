"""`concierge eval FILE --llm`'s comparison, over the shared evaluation file and a fake vLLM.

The fake model cannot understand anything, so what is checked is the bookkeeping: that each
pipeline is scored by the contract's rules, that model calls, fallbacks and grounding rejections
are counted where they happen, and that the latency figures are measured ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.errors import ConfigurationError
from backends.types import IntentKind
from bot.llm.client import LlmReader
from bot.llm.evaluation import compare, compare_with_model, percentile, render_comparison, standard_pipelines
from bot.llm.output import ModelReading
from bot.llm.prompts import HINT_LABEL
from bot.llm.settings import LlmSettings
from bot.understanding.evaluation import EvalCase, load_cases
from bot.understanding.grammar import HIGH_CONFIDENCE, understand_with_confidence
from tests.openai_fake import EchoHint, FakeVllm, HttpError, Structured

SHARED_EVAL = Path(__file__).parents[2].parent / "shared/eval/requests.jsonl"
INVENTED_GPUS = 997  # a count no case's text states


@pytest.fixture
def shared_cases() -> list[EvalCase]:
    if not SHARED_EVAL.exists():
        pytest.skip(f"the shared evaluation file is not at {SHARED_EVAL} (it lives beside the repository)")
    return load_cases(SHARED_EVAL)


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm(expected_properties=frozenset(ModelReading.model_fields)) as server:
        yield server


def reader_for(fake: FakeVllm) -> LlmReader:
    return LlmReader.from_settings(LlmSettings(url=fake.base_url, timeout_s=5))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(20, 0, -1)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0)) == (10.0, 19.0, 20.0)
    assert percentile([], 0.5) == 0.0


def test_a_model_that_echoes_the_hint_scores_as_the_grammar(
    fake: FakeVllm, shared_cases: list[EvalCase]
) -> None:
    fake.default = EchoHint(HINT_LABEL)
    comparison = compare(shared_cases, standard_pipelines(reader_for(fake)))

    assert len(shared_cases) == 35
    # Every shared case is read confidently, so the routing never asks the model on this file.
    assert all(understand_with_confidence(c.text)[1] >= HIGH_CONFIDENCE for c in shared_cases)
    assert comparison.pipelines == ("grammar", "llm", "routed")
    assert comparison.row("model calls").figures == (0, 35, 0)
    assert comparison.row("fell back to grammar").figures == (0, 0, 0)
    assert comparison.row("grounding rejections").figures == (0, 0, 0)
    for row in comparison.rows:
        if row.kind == "share":
            grammar, llm, routed = row.figures
            assert grammar == llm == routed, row.label
    assert comparison.row("accuracy intent").figures[0] == 1.0
    assert len(fake.completions) == 35 and fake.problems == []
    p50, p95 = comparison.row("latency p50").figures, comparison.row("latency p95").figures
    assert all(0 < a <= b for a, b in zip(p50, p95, strict=True))
    assert p50[1] > p50[0]  # a round trip to even a 0 ms model costs more than the grammar


def test_invented_values_are_counted_as_grounding_rejections(
    fake: FakeVllm, shared_cases: list[EvalCase]
) -> None:
    fake.default = EchoHint(HINT_LABEL, overrides={"gpus": INVENTED_GPUS})
    comparison = compare(shared_cases, standard_pipelines(reader_for(fake)))

    submits = [c for c in shared_cases if understand_with_confidence(c.text)[0].kind == IntentKind.SUBMIT]
    assert len(submits) == 23
    # A question keeps only filter fields, so the invented count survives in submit answers alone.
    assert comparison.row("grounding rejections").figures == (0, 23, 0)
    assert comparison.row("accuracy intent").figures[1] == pytest.approx(12 / 35)
    assert comparison.row("cases passed").figures[1] == comparison.runs[1].report.pass_rate


def test_fallbacks_are_counted_and_scored_as_the_grammar(fake: FakeVllm) -> None:
    cases = [
        EvalCase(
            "could I maybe get a couple of h100 things for my experiment", {"intent": "submit", "gpus": 2}, 1
        ),
        EvalCase("need 2 gpus for the sweep, the usual setup", {"intent": "submit", "gpus": 2}, 2),
        EvalCase("why is job 1234 pending?", {"intent": "why_pending", "job": "1234"}, 3),
    ]
    # llm: three calls, all failing; routed: two calls (the question takes the fast path).
    fake.script(HttpError(500), HttpError(500), HttpError(500))
    fake.script(Structured({"intent": "submit", "gpus": 2, "gpu_type": "h100"}), HttpError(500))
    comparison = compare(cases, standard_pipelines(reader_for(fake)))

    assert comparison.row("model calls").figures == (0, 3, 2)
    assert comparison.row("fell back to grammar").figures == (0, 0, 1)
    assert comparison.row("cases passed").figures == (1.0, 0.0, 1.0)
    assert comparison.row("accuracy gpus").figures == (1.0, 0.0, 1.0)
    text = render_comparison(comparison)
    assert text.splitlines()[0] == "3 cases"
    assert text.splitlines()[1].split() == ["grammar", "llm", "routed"]
    assert "cases passed" in text and "100.0%" in text and " ms" in text


def test_without_a_model_url_the_comparison_says_how_to_configure_it() -> None:
    with pytest.raises(ConfigurationError, match="CONCIERGE_LLM_URL"):
        compare_with_model([], LlmSettings())
