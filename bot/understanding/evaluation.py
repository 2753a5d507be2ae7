"""Scoring a parser against an evaluation set, exactly as shared/contracts/parse.md says.

A case passes when every key under `expect` equals the printed value: strings compared
case-insensitively after trimming, and `command` (a string too) also with runs of whitespace folded.
Keys not under `expect` are not scored. A key the parser did not print at all is a mismatch even when
`null` was expected: the contract says every key must be present. Booleans are compared as booleans
(`true` is not `1`). The parser is any `text -> dict` function, so the grammar and the language model
are scored by the same code; a parser that raises fails that case and the run goes on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.errors import RequestInvalid

_WHITESPACE_RE = re.compile(r"\s+")
_MISSING = object()


@dataclass(frozen=True)
class EvalCase:
    text: str
    expect: dict[str, Any]
    line: int  # 1-based line in the file it came from (0 when built in code)


@dataclass(frozen=True)
class Mismatch:
    field: str
    expected: Any
    got: Any


@dataclass(frozen=True)
class CaseResult:
    case: EvalCase
    mismatches: tuple[Mismatch, ...]
    error: str | None = None  # the parser raised instead of answering

    @property
    def passed(self) -> bool:
        return not self.mismatches and self.error is None


@dataclass
class FieldScore:
    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class EvalReport:
    results: list[CaseResult] = field(default_factory=list)
    fields: dict[str, FieldScore] = field(default_factory=dict)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.results) if self.results else 0.0


def load_cases(path: Path | str) -> list[EvalCase]:
    """Cases from a JSONL file of {"text": str, "expect": {key: value}}; blank lines are skipped."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise RequestInvalid(
            f"cannot read evaluation file {source}: {e}. Check the path and that it is UTF-8 text."
        ) from e
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise RequestInvalid(
                f"{source}:{number}: not valid JSON ({e.msg}). Each line must be one JSON object."
            ) from e
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("text"), str)
            or not isinstance(raw.get("expect"), dict)
        ):
            raise RequestInvalid(
                f'{source}:{number}: each line must be an object with "text" (a string) and "expect" '
                '(an object), e.g. {"text": "cancel 4242", "expect": {"intent": "cancel", "job": "4242"}}.'
            )
        cases.append(EvalCase(text=raw["text"], expect=dict(raw["expect"]), line=number))
    return cases


def _normalised(key: str, value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().casefold()
        return _WHITESPACE_RE.sub(" ", text) if key == "command" else text
    return value


def values_match(key: str, expected: Any, got: Any) -> bool:
    """Whether a printed value scores as the expected one under parse.md's rules."""
    if got is _MISSING:
        return False
    if isinstance(expected, bool) or isinstance(got, bool):
        return isinstance(expected, bool) and isinstance(got, bool) and expected == got
    return bool(_normalised(key, expected) == _normalised(key, got))


def _score_case(case: EvalCase, parse: Callable[[str], dict[str, Any]]) -> CaseResult:
    try:
        printed = parse(case.text)
    except Exception as e:  # a parser under evaluation may be broken; that is what we measure
        return CaseResult(case, (), error=f"{type(e).__name__}: {e}")
    mismatches = tuple(
        Mismatch(key, expected, printed.get(key, _MISSING))
        for key, expected in case.expect.items()
        if not values_match(key, expected, printed.get(key, _MISSING))
    )
    return CaseResult(case, mismatches)


def evaluate(cases: list[EvalCase], parse: Callable[[str], dict[str, Any]]) -> EvalReport:
    """Score `parse` on every case: per field and per case."""
    report = EvalReport()
    for case in cases:
        result = _score_case(case, parse)
        report.results.append(result)
        wrong = {m.field for m in result.mismatches}
        for key in case.expect:
            score = report.fields.setdefault(key, FieldScore())
            score.total += 1
            if result.error is None and key not in wrong:
                score.correct += 1
    return report


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def _shown(value: Any) -> str:
    return "(not printed)" if value is _MISSING else json.dumps(value, ensure_ascii=False)


def render_report(report: EvalReport) -> str:
    """Per-field accuracy, failing cases with what differed, and the case pass rate, as plain text."""
    lines = ["per field:", f"  {'field':<20} {'correct':>11} {'accuracy':>9}"]
    for key in sorted(report.fields, key=lambda k: (-report.fields[k].total, k)):
        score = report.fields[key]
        lines.append(f"  {key:<20} {score.correct:>5}/{score.total:<5} {score.accuracy:>8.1%}")
    lines.append("")
    lines.append("per case:")
    for result in report.results:
        where = f"line {result.case.line}" if result.case.line else "case"
        lines.append(f"  {'PASS' if result.passed else 'FAIL'} {where}: {_one_line(result.case.text)}")
        if result.error is not None:
            lines.append(f"       parser raised {result.error}")
        for mismatch in result.mismatches:
            lines.append(
                f"       {mismatch.field}: expected {_shown(mismatch.expected)}, got {_shown(mismatch.got)}"
            )
    lines.append("")
    lines.append(f"cases passed: {report.passed}/{len(report.results)} ({report.pass_rate:.1%})")
    return "\n".join(lines)
