"""Scoring a parser exactly as shared/contracts/parse.md says (bot/understanding/evaluation.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backends.errors import RequestInvalid
from bot.understanding.evaluation import EvalCase, evaluate, load_cases, render_report, values_match


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_loads_cases_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            json.dumps({"text": "cancel 4242", "expect": {"intent": "cancel", "job": "4242"}}),
            "",
            json.dumps({"text": "help", "expect": {"intent": "help"}}),
        ],
    )
    cases = load_cases(path)
    assert [(c.text, c.line) for c in cases] == [("cancel 4242", 1), ("help", 3)]
    assert cases[0].expect == {"intent": "cancel", "job": "4242"}


@pytest.mark.parametrize(
    "bad_line",
    [
        "{not json",
        json.dumps(["a list"]),
        json.dumps({"text": "no expect"}),
        json.dumps({"text": 3, "expect": {}}),
        json.dumps({"text": "x", "expect": "intent=help"}),
    ],
)
def test_a_bad_line_is_named_by_its_number(tmp_path: Path, bad_line: str) -> None:
    path = _write(tmp_path, [json.dumps({"text": "help", "expect": {"intent": "help"}}), bad_line])
    with pytest.raises(RequestInvalid, match=r"cases\.jsonl:2:"):
        load_cases(path)


def test_a_missing_file_is_a_request_error(tmp_path: Path) -> None:
    with pytest.raises(RequestInvalid, match="cannot read"):
        load_cases(tmp_path / "absent.jsonl")


@pytest.mark.parametrize(
    ("key", "expected", "got", "matches"),
    [
        ("gpu_type", "A100", " a100 ", True),  # strings: case-insensitive after trimming
        ("name", "Llama-SFT", "llama-sft", True),
        ("name", "llama sft", "llama  sft", False),  # whitespace folding is for commands only
        ("command", "python  train.py\t--x 1", "python train.py --x 1", True),
        ("command", "python Train.py", "python train.py", True),  # a command is a string too
        ("command", "python train.py", "python train.py --x", False),
        ("gpus", 4, 4, True),
        ("gpus", 4, "4", False),
        ("gpus", None, None, True),
        ("gpus", None, 0, False),
        ("shared", True, True, True),
        ("shared", True, 1, False),  # a boolean is not a number
        ("gpus", 1, True, False),
    ],
)
def test_values_match_as_the_contract_says(key: str, expected: Any, got: Any, matches: bool) -> None:
    assert values_match(key, expected, got) is matches


def _fixed(answers: dict[str, dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    def parse(text: str) -> dict[str, Any]:
        if text == "boom":
            raise ValueError("parser broke")
        return answers[text]

    return parse


def test_scores_only_the_expected_keys_per_field_and_per_case() -> None:
    cases = [
        EvalCase("a", {"intent": "submit", "gpus": 2}, 1),
        EvalCase("b", {"intent": "cancel", "job": "7"}, 2),
        EvalCase("boom", {"intent": "help"}, 3),
    ]
    answers: dict[str, dict[str, Any]] = {
        "a": {"intent": "submit", "gpus": 2, "gpu_type": "wrong but not scored"},
        "b": {"intent": "cancel", "job": "8"},
    }
    report = evaluate(cases, _fixed(answers))
    assert [r.passed for r in report.results] == [True, False, False]
    assert (report.fields["intent"].correct, report.fields["intent"].total) == (2, 3)
    assert (report.fields["job"].correct, report.fields["job"].total) == (0, 1)
    assert "gpu_type" not in report.fields
    assert report.passed == 1 and report.pass_rate == pytest.approx(1 / 3)
    assert report.results[2].error == "ValueError: parser broke"


def test_a_key_the_parser_did_not_print_is_a_mismatch_even_for_null() -> None:
    report = evaluate([EvalCase("a", {"job": None}, 1)], _fixed({"a": {"intent": "help"}}))
    assert not report.results[0].passed


def test_report_shows_fields_failures_and_the_pass_rate() -> None:
    cases = [EvalCase("a", {"intent": "submit", "gpus": 2}, 1), EvalCase("b\nsecond line", {"gpus": 1}, 4)]
    report = evaluate(cases, _fixed({"a": {"intent": "submit", "gpus": 2}, "b\nsecond line": {"gpus": 3}}))
    text = render_report(report)
    assert "gpus" in text and "1/2" in text and "50.0%" in text
    assert "PASS line 1: a" in text
    assert "FAIL line 4: b\\nsecond line" in text  # one line per case, whatever the text holds
    assert "gpus: expected 1, got 3" in text
    assert text.rstrip().endswith("cases passed: 1/2 (50.0%)")


def test_an_empty_set_reports_zero_not_a_division_error() -> None:
    report = evaluate([], _fixed({}))
    assert report.pass_rate == 0.0
    assert "cases passed: 0/0" in render_report(report)
