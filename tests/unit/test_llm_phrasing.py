"""The model phrases why a job waits from our facts only; anything else gives the plain template.

Chat models are LangChain's own fakes (`FakeListChatModel`, not our code), a plain callable that
records what it was sent, and the real `ChatOpenAI` client against a local HTTP server speaking
the OpenAI chat-completions wire format (and against a port nobody listens on).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from backends.types import GpuPool, PendingCode, PendingReason
from bot.llm.phrasing import (
    SYSTEM_PROMPT,
    Phrased,
    PhrasingSettings,
    facts_text,
    invented_facts,
    phrase_why,
)
from bot.text_render import reasons as plain_reasons

JOB = "4242"
REASONS = (
    PendingReason(
        code=PendingCode.INSUFFICIENT_GPU,
        raw="Resources",
        sentence="Job 4242 waits for 4 free A100 GPUs on partition gpu-a100; 1 is free now.",
        alternatives=("2 × L40S are free now on partition gpu-l40s",),
        expected_start=datetime(2025, 6, 1, 14, 30, tzinfo=UTC),
    ),
)
POOLS = (
    GpuPool(backend="slurm", pool="gpu-a100", gpu_type="a100", total=16, allocated=15, free_per_node=(1,)),
    GpuPool(
        backend="slurm",
        pool="gpu-l40s",
        gpu_type="l40s",
        total=8,
        allocated=6,
        free_per_node=(2,),
        max_time_minutes=2880,
    ),
)
TEMPLATE = plain_reasons(JOB, REASONS)
GOOD = (
    "Job 4242 is waiting for 4 A100 GPUs on gpu-a100, and only 1 of the 16 there is free. "
    "Slurm expects it to start at 14:30 UTC on 2025-06-01. "
    "If L40S cards will do, 2 are free right now on gpu-l40s."
)


def fake(*responses: str, sleep: float | None = None) -> FakeListChatModel:
    return FakeListChatModel(responses=list(responses), sleep=sleep)


def test_the_facts_are_what_the_backends_said_and_the_capacity() -> None:
    assert facts_text(JOB, REASONS, POOLS) == (
        "Job: 4242\n"
        "Reason (insufficient_gpu): Job 4242 waits for 4 free A100 GPUs on partition gpu-a100; "
        "1 is free now.\n"
        "  The scheduler says: Resources\n"
        "  Expected start: 2025-06-01 14:30 UTC\n"
        "  Would start sooner: 2 × L40S are free now on partition gpu-l40s\n"
        "GPUs now:\n"
        "- slurm pool gpu-a100: a100, 1 of 16 free, at most 1 free on one node\n"
        "- slurm pool gpu-l40s: l40s, 2 of 8 free, at most 2 free on one node, longest wall time 2880 minutes"
    )


def test_a_phrasing_that_keeps_to_the_facts_is_used() -> None:
    assert phrase_why(JOB, REASONS, POOLS, fake(GOOD)) == Phrased(GOOD, "model")


def test_the_model_is_sent_our_instructions_and_the_facts_only() -> None:
    sent: list[list[BaseMessage]] = []

    def chat(messages: list[BaseMessage]) -> str:
        sent.append(messages)
        return GOOD

    assert phrase_why(JOB, REASONS, POOLS, chat).source == "model"
    ((system, human),) = sent
    assert (system.type, system.content) == ("system", SYSTEM_PROMPT)
    assert (human.type, human.content) == ("human", facts_text(JOB, REASONS, POOLS))


@pytest.mark.parametrize(
    ("answer", "invented"),
    [
        (GOOD + " It should start in about 3 hours.", "3"),
        (GOOD + " Expect roughly twenty minutes more.", "20"),
        ("Job 4242 waits; 12 A100 GPUs are busy on gpu-a100.", "12"),
        ("Job 4242 waits for 4 A100 GPUs. 2 H100 GPUs are free on gpu-a100.", "h100"),
        ("Job 4243 waits for 4 A100 GPUs.", "4243"),
        ("Job 4242 waits for 4 A100 GPUs until 2025-06-02.", "2025-06-02"),  # each number is there
        ("Job 4242 waits for 4 A100 GPUs; about 2.5 hours to go.", "2.5"),
        (GOOD + " That is in 30 minutes.", "30"),  # a part of 14:30 is not a duration the facts give
    ],
)
def test_a_phrasing_with_a_number_or_gpu_the_facts_lack_falls_back(answer: str, invented: str) -> None:
    phrased = phrase_why(JOB, REASONS, POOLS, fake(answer))
    assert phrased == Phrased(
        TEMPLATE, "template", f"the model's answer has what the facts do not say: {invented}"
    )


def test_invented_facts_are_listed_in_order() -> None:
    facts = facts_text(JOB, REASONS, POOLS)
    assert invented_facts(GOOD, facts) == []
    assert invented_facts("a dozen H100 and 3 V100 in 7 minutes, one of them a T4", facts) == [
        "3",
        "7",
        "12",
        "h100",
        "t4",
        "v100",
    ]


def test_an_empty_or_overlong_answer_falls_back() -> None:
    assert phrase_why(JOB, REASONS, POOLS, fake("   ")) == Phrased(
        TEMPLATE, "template", "the model's answer was empty"
    )
    settings = PhrasingSettings(max_chars=100)
    assert phrase_why(JOB, REASONS, POOLS, fake(GOOD), settings) == Phrased(
        TEMPLATE, "template", "the model's answer was longer than 100 characters"
    )


def test_a_slow_model_is_abandoned_at_our_deadline() -> None:
    started = time.perf_counter()
    phrased = phrase_why(JOB, REASONS, POOLS, fake(GOOD, sleep=3.0), PhrasingSettings(timeout_s=0.2))
    elapsed = time.perf_counter() - started
    assert phrased == Phrased(TEMPLATE, "template", "the model did not answer within 0.2 s")
    assert 0.2 <= elapsed < 1.0


def test_a_failing_model_falls_back() -> None:
    def broken(messages: list[BaseMessage]) -> str:
        raise RuntimeError("boom")

    assert phrase_why(JOB, REASONS, POOLS, broken) == Phrased(
        TEMPLATE, "template", "the model failed: RuntimeError"
    )


def test_no_model_or_no_reason_needs_no_call() -> None:
    called: list[int] = []

    def chat(messages: list[BaseMessage]) -> str:
        called.append(1)
        return GOOD

    assert phrase_why(JOB, REASONS, POOLS, None) == Phrased(
        TEMPLATE, "template", "no language model is configured"
    )
    assert phrase_why(JOB, (), POOLS, chat) == Phrased(
        "Job 4242: the scheduler gave no reason.", "template", "the scheduler gave no reason to phrase"
    )
    assert called == []


# --- the real OpenAI client over HTTP ----------------------------------------------------------------


class _ChatCompletions(BaseHTTPRequestHandler):
    """`POST /v1/chat/completions` answering `server.reply` as the assistant's text, as vLLM does."""

    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if self.server.status != 200:
            payload: dict[str, Any] = {"error": {"message": "overloaded", "type": "ServiceUnavailable"}}
        else:
            message = {"role": "assistant", "content": self.server.reply}
            payload = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": self.server.finish_reason}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        data = json.dumps(payload).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChatCompletions)
        self.reply = GOOD
        self.status = 200
        self.finish_reason = "stop"
        self.bodies: list[dict[str, Any]] = []


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()


def chat_openai(port: int) -> ChatOpenAI:
    return ChatOpenAI(
        model="Qwen/Qwen2.5-7B-Instruct",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=SecretStr("EMPTY"),
        timeout=2,
        max_retries=0,
    )


def test_chat_openai_phrases_over_http(server: _Server) -> None:
    phrased = phrase_why(JOB, REASONS, POOLS, chat_openai(server.server_address[1]))
    assert phrased == Phrased(GOOD, "model")
    (body,) = server.bodies
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == facts_text(JOB, REASONS, POOLS)


def test_chat_openai_invention_over_http_falls_back(server: _Server) -> None:
    server.reply = "Job 4242 should start within 45 minutes."
    phrased = phrase_why(JOB, REASONS, POOLS, chat_openai(server.server_address[1]))
    assert phrased == Phrased(TEMPLATE, "template", "the model's answer has what the facts do not say: 45")


def test_an_answer_cut_off_at_the_token_limit_falls_back(server: _Server) -> None:
    """vLLM ends a reply that reached max_tokens with finish_reason "length" (seen on the real server:
    tests/integration/test_llm_real_vllm.py); what is left may pass every check and still mislead."""
    server.reply = GOOD.split(".")[0]  # the first sentence: keeps to the facts, and stops there
    server.finish_reason = "length"
    phrased = phrase_why(JOB, REASONS, POOLS, chat_openai(server.server_address[1]))
    assert phrased == Phrased(TEMPLATE, "template", "the model's answer was cut off at its token limit")


def test_chat_openai_http_error_falls_back(server: _Server) -> None:
    server.status = 503
    phrased = phrase_why(JOB, REASONS, POOLS, chat_openai(server.server_address[1]))
    assert phrased == Phrased(TEMPLATE, "template", "the model failed: OpenAIAPIError")


def test_an_unreachable_model_falls_back() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    phrased = phrase_why(JOB, REASONS, POOLS, chat_openai(port))
    assert phrased == Phrased(TEMPLATE, "template", "the model failed: OpenAIConnectionError")
