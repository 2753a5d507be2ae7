"""`concierge eval FILE --llm`: grammar only, model only and the routing, side by side.

The question the table answers is whether the model earns its cost: per field, how often each
pipeline prints what the case expects (scored by `bot.understanding.evaluation`, the contract's own
rules), how often the model's answer was turned into a question because the text does not state a
value it gave (grounding), how often the grammar had to step in, and the latency per request.

"Model only" sends every text to the model (with the grammar's hint, as the routing would) and
never falls back: it is what the bot would do without the fast path. Latency is measured around
each pipeline's whole `understand` call, grammar included, one case after another.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from bot.llm.client import LlmReader
from bot.llm.routing import Routed, RoutedUnderstanding
from bot.llm.settings import LlmSettings
from bot.understanding.evaluation import EvalCase, EvalReport, evaluate

Understand = Callable[[str], Routed]
FigureKind = Literal["share", "count", "ms"]


@dataclass(frozen=True)
class PipelineRun:
    """One pipeline over the cases: the contract's scoring, and what the routing reported."""

    name: str
    report: EvalReport
    routed: tuple[Routed, ...]

    @property
    def latencies_ms(self) -> list[float]:
        return [r.latency_s * 1000 for r in self.routed]

    @property
    def model_calls(self) -> int:
        return sum(1 for r in self.routed if r.model_called)

    @property
    def fallbacks(self) -> int:
        return sum(1 for r in self.routed if r.source == "grammar_fallback")

    @property
    def grounding_rejections(self) -> int:
        return sum(1 for r in self.routed if r.unsupported)


@dataclass(frozen=True)
class Row:
    label: str
    figures: tuple[float, ...]  # one per pipeline, in the table's order
    kind: FigureKind


@dataclass(frozen=True)
class Comparison:
    pipelines: tuple[str, ...]
    rows: tuple[Row, ...]
    runs: tuple[PipelineRun, ...]

    def row(self, label: str) -> Row:
        return next(r for r in self.rows if r.label == label)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (0 < share ≤ 1): a value that was measured, never interpolated."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def run_pipeline(name: str, cases: list[EvalCase], understand: Understand) -> PipelineRun:
    answers: list[Routed] = []

    def printed(text: str) -> dict[str, Any]:
        routed = understand(text)
        answers.append(routed)
        return routed.intent.to_contract()

    return PipelineRun(name, evaluate(cases, printed), tuple(answers))


def compare(cases: list[EvalCase], pipelines: Mapping[str, Understand]) -> Comparison:
    """Run every pipeline over the cases, then one row per field and per figure."""
    runs = tuple(run_pipeline(name, cases, understand) for name, understand in pipelines.items())
    fields = sorted({k for case in cases for k in case.expect}, key=lambda k: (-_total(cases, k), k))
    rows = [
        Row(f"accuracy {key}", tuple(run.report.fields[key].accuracy for run in runs), "share")
        for key in fields
    ]
    rows += [
        Row("cases passed", tuple(run.report.pass_rate for run in runs), "share"),
        Row("model calls", tuple(float(run.model_calls) for run in runs), "count"),
        Row("fell back to grammar", tuple(float(run.fallbacks) for run in runs), "count"),
        Row("grounding rejections", tuple(float(run.grounding_rejections) for run in runs), "count"),
        Row("latency p50", tuple(percentile(run.latencies_ms, 0.50) for run in runs), "ms"),
        Row("latency p95", tuple(percentile(run.latencies_ms, 0.95) for run in runs), "ms"),
    ]
    return Comparison(tuple(pipelines), tuple(rows), runs)


def standard_pipelines(reader: LlmReader) -> dict[str, Understand]:
    """Grammar only, model only (no fast path, no fallback) and the routing, in the table's order."""
    return {
        "grammar": RoutedUnderstanding(None).understand,
        "llm": RoutedUnderstanding(reader, fast_path=False, fallback=False).understand,
        "routed": RoutedUnderstanding(reader).understand,
    }


def compare_with_model(cases: list[EvalCase], settings: LlmSettings) -> Comparison:
    """The three pipelines against the model in `settings` (ConfigurationError without a URL)."""
    return compare(cases, standard_pipelines(LlmReader.from_settings(settings)))


def _total(cases: list[EvalCase], key: str) -> int:
    return sum(1 for case in cases if key in case.expect)


def _shown(value: float, kind: FigureKind) -> str:
    if kind == "share":
        return f"{value:.1%}"
    if kind == "count":
        return f"{value:.0f}"
    return f"{value:.2f} ms"


def render_comparison(comparison: Comparison) -> str:
    """The table as plain text, one column per pipeline."""
    width = max(len(r.label) for r in comparison.rows) + 2
    cases = len(comparison.runs[0].routed) if comparison.runs else 0
    lines = [f"{cases} cases", f"{'':<{width}}" + "".join(f"{name:>12}" for name in comparison.pipelines)]
    for row in comparison.rows:
        lines.append(f"{row.label:<{width}}" + "".join(f"{_shown(v, row.kind):>12}" for v in row.figures))
    return "\n".join(lines)
