"""A vLLM started with `--api-key` is usable: the key set in the environment reaches the model.

Through the CLI door (`concierge eval FILE --llm`, which reads each case with the configured model)
against the fake vLLM, which answers 401 to any other Bearer token, as vLLM does. Both spellings
work: nested (CONCIERGE_LLM__API_KEY) and flat beside CONCIERGE_LLM_URL (CONCIERGE_LLM_API_KEY).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli.main import run
from bot.llm.output import ModelReading
from bot.settings import Settings
from tests.openai_fake import FakeVllm, Structured

KEY = "sk-site-key"
CASE = {"text": "2 a100 for 4 hours to run python train.py", "expect": {"intent": "submit", "gpus": 2}}


@pytest.fixture
def model() -> Iterator[FakeVllm]:
    answer = Structured({"intent": "submit", "gpus": 2, "gpu_type": "a100"})
    with FakeVllm(
        expected_properties=frozenset(ModelReading.model_fields), default=answer, api_key=KEY
    ) as fake:
        yield fake


@pytest.fixture
def cases(tmp_path: Path) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASE) + "\n")
    return path


@pytest.mark.parametrize("variable", ["CONCIERGE_LLM__API_KEY", "CONCIERGE_LLM_API_KEY"])
def test_the_key_in_the_environment_reaches_the_model(
    model: FakeVllm,
    cases: Path,
    variable: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONCIERGE_LLM_URL", model.base_url)
    monkeypatch.setenv(variable, KEY)

    assert run(["eval", str(cases), "--llm"]) == 0

    assert model.completions, "the model was never asked"
    assert {r.status for r in model.completions} == {200}
    assert {r.headers["authorization"] for r in model.completions} == {f"Bearer {KEY}"}
    assert KEY not in capsys.readouterr().out + repr(Settings().llm)  # a secret, never printed


def test_without_the_key_the_model_refuses_and_the_grammar_answers(
    model: FakeVllm, cases: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONCIERGE_LLM_URL", model.base_url)

    assert run(["eval", str(cases), "--llm"]) == 0

    assert {r.status for r in model.completions} == {401}


def test_the_nested_spelling_wins_over_the_flat_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCIERGE_LLM_URL", "http://flat:8000/v1")
    monkeypatch.setenv("CONCIERGE_LLM_MODEL", "flat-model")
    monkeypatch.setenv("CONCIERGE_LLM__URL", "http://nested:8000/v1")

    llm = Settings().llm

    assert (llm.url, llm.model) == ("http://nested:8000/v1", "flat-model")
