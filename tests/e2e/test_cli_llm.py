"""`concierge ask` with CONCIERGE_LLM_URL set: the model reads unsure text, the grammar keeps the
fast path, and a dead model degrades to the grammar with a note — on the real local Slurm.

The model is the fake vLLM (tests/openai_fake), reached by the real console script over HTTP.
"""

from __future__ import annotations

import re
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.llm.output import ModelReading
from tests.helpers.cli import Cli, cli_env, squeue_field, wait_for
from tests.openai_fake import FakeVllm, RawText, Structured

pytestmark = pytest.mark.slurm

# The grammar reads this below its confidence threshold, so the model is asked.
UNSURE = "could I maybe get a couple of l40s things for my experiment, it runs sleep 60"


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm(expected_properties=frozenset(ModelReading.model_fields)) as server:
        yield server


@pytest.fixture
def cli_with_llm(cli: Cli, fake: FakeVllm) -> Cli:
    return Cli({**cli.env, "CONCIERGE_LLM_URL": fake.base_url, "CONCIERGE_LLM_TIMEOUT_S": "5"})


@pytest.fixture
def cli(slurm: None, tmp_path: Path) -> Cli:
    return Cli(cli_env(tmp_path))


def reading_of_unsure(gpus: int) -> Structured:
    """The model's reading of UNSURE: a batch job of `gpus` L40S running sleep 60."""
    fields = {"intent": "submit", "workload": "batch", "gpus": gpus, "gpu_type": "l40s"}
    return Structured({**fields, "command": "sleep 60"})


def submitted_job(out: str) -> str:
    match = re.search(r"Submitted job (\d+)", out)
    assert match, out
    return match.group(1)


def test_the_model_reads_unsure_text_and_the_job_runs_as_the_person(
    cli_with_llm: Cli, fake: FakeVllm
) -> None:
    fake.script(reading_of_unsure(gpus=2))
    job = cli_with_llm.submit("alice", UNSURE)
    assert len(fake.completions) == 1 and fake.problems == []
    assert squeue_field(job, "%u") == "alice"
    assert "l40s:2" in squeue_field(job, "%b")
    subprocess_cancel(job)


def test_confident_text_never_reaches_the_model(cli_with_llm: Cli, fake: FakeVllm) -> None:
    subprocess_cancel(cli_with_llm.submit("alice", "1 A100 for 10 minutes to run sleep 30"))
    assert fake.completions == []


def test_an_invented_gpu_count_is_not_submitted(cli_with_llm: Cli, fake: FakeVllm) -> None:
    fake.script(reading_of_unsure(gpus=8))
    result = cli_with_llm("--as", "alice", "ask", "--yes", UNSURE)
    assert result.code == 2, result.out
    assert "Submitted job" not in result.out
    assert "8" in result.err and "confirm" in result.err.lower(), result.err


def test_a_dead_model_degrades_to_the_grammar_and_says_so(cli: Cli) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    dead = Cli({**cli.env, "CONCIERGE_LLM_URL": f"http://127.0.0.1:{dead_port}/v1"})
    result = dead("--as", "alice", "ask", "--yes", UNSURE)
    assert result.code == 0, result.err
    assert "the assistant is unreachable" in result.out + result.err
    job = submitted_job(result.out)
    assert squeue_field(job, "%u") == "alice"
    subprocess_cancel(job)


def subprocess_cancel(job: str) -> None:
    subprocess.run(["scancel", job], check=True)


def test_why_is_phrased_by_the_model_from_the_facts_or_falls_back_to_the_template(cli: Cli) -> None:
    first = cli.submit("alice", "2 A100s for 10 minutes to run sleep 120")
    waiting = cli.submit("alice", "2 A100s for 10 minutes to run sleep 120")
    try:
        # The template changes once backfill gives a start estimate (bf_interval=5 s): wait for it, so
        # the two template answers compared below are of the same facts.
        wait_for(lambda: squeue_field(waiting, "%r") == "Resources")
        wait_for(lambda: squeue_field(waiting, "%S") not in {"N/A", ""})
        plain = cli("why", waiting)
        assert plain.code == 0, plain.err
        assert "Expected start" in plain.out  # a clock time in the facts, checked whole below
        with FakeVllm(response_format="none") as phrasing:  # plain chat: no schema on this call
            llm = Cli({**cli.env, "CONCIERGE_LLM_URL": phrasing.base_url})
            said = (
                f"Job {waiting} waits because both A100s are busy; 2 L40S GPUs are free now on partition gpu."
            )
            phrasing.script(RawText(said))
            phrased = llm("why", waiting)
            assert phrased.code == 0, phrased.err
            assert phrased.out.strip() == said
            assert str(waiting) in phrasing.completions[0].messages[-1]["content"]  # the facts went in

            phrasing.script(RawText(f"Job {waiting} starts in 7 minutes."))  # a number no fact holds
            invented = llm("why", waiting)
            assert invented.code == 0, invented.err
            assert invented.out == plain.out  # the template, word for word
    finally:
        subprocess.run(["scancel", first, waiting], check=False)
