"""The routing between grammar and model, over the real LangChain/openai client and a fake vLLM.

The fake (tests/openai_fake) speaks vLLM's OpenAI wire format on 127.0.0.1 and checks every request:
the served model name, the messages, `response_format` with our JSON schema, no `guided_json`.
Each fallback path is driven the way it happens in production: the server answers badly, slowly,
or not at all, and the real client has to cope.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import openai
import pytest

from backends.errors import ConciergeError
from backends.types import Intent, IntentKind, JobRequest
from bot.llm.client import AssistantAnswerInvalid, LlmReader
from bot.llm.output import ModelReading, intent_from_reading, reading_from_intent
from bot.llm.prompts import HINT_LABEL, MESSAGE_LABEL, ConversationSoFar
from bot.llm.routing import RoutedUnderstanding, RoutingCounts, is_command_syntax
from bot.llm.settings import LlmSettings
from bot.understanding.grammar import HIGH_CONFIDENCE, understand_with_confidence
from tests.openai_fake import (
    DEFAULT_MODEL,
    Delayed,
    EchoHint,
    FakeVllm,
    HttpError,
    RawText,
    Reply,
    Structured,
)

UNSURE = "could I maybe get a couple of h100 things for my experiment tomorrow"  # grammar: 0.556
UNSURE_READING = {"intent": "submit", "workload": "batch", "gpus": 2, "gpu_type": "h100"}
SCHEMA_FIELDS = frozenset(ModelReading.model_fields)


@pytest.fixture
def fake() -> Iterator[FakeVllm]:
    with FakeVllm(expected_properties=SCHEMA_FIELDS) as server:
        yield server


def reader_for(fake: FakeVllm, *, timeout_s: float = 5.0, model: str = DEFAULT_MODEL) -> LlmReader:
    return LlmReader.from_settings(LlmSettings(url=fake.base_url, model=model, timeout_s=timeout_s))


def grammar_intent(text: str) -> Intent:
    return understand_with_confidence(text)[0]


def test_the_unsure_text_is_below_the_fast_path() -> None:
    # The tests below rely on it: the grammar reads it, but not confidently enough to skip the model.
    intent, confidence = understand_with_confidence(UNSURE)
    assert confidence == 0.556 < HIGH_CONFIDENCE
    assert intent.request == JobRequest(workload="batch", gpus=2, gpu_type="h100")


def test_the_request_on_the_wire_is_what_vllm_needs(fake: FakeVllm) -> None:
    fake.script(Structured(UNSURE_READING))
    routed = RoutedUnderstanding(reader_for(fake)).understand(UNSURE)

    assert fake.problems == []
    [request] = fake.completions
    body = request.body
    assert body is not None
    assert body["model"] == DEFAULT_MODEL
    assert body["temperature"] == 0
    assert body["max_completion_tokens"] == 512
    assert body.get("stream") is False
    assert not [key for key in body if "guided" in key]
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "ModelReading"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["properties"] == ModelReading.model_json_schema()["properties"]
    assert schema["additionalProperties"] is False and schema["required"] == list(ModelReading.model_fields)
    assert request.headers["authorization"] == "Bearer EMPTY"
    system, user = request.messages
    assert system["role"] == "system" and "Only fill in what the message" in system["content"]
    assert user["role"] == "user"
    hint_line, message_line = user["content"].splitlines()
    assert json.loads(hint_line.removeprefix(HINT_LABEL)) == {
        **dict.fromkeys(SCHEMA_FIELDS),
        **UNSURE_READING,
        "shared": False,
        "cpu_only": False,
    }
    assert message_line == MESSAGE_LABEL + UNSURE
    assert (routed.source, routed.degraded) == ("llm", None)


def test_the_schema_has_no_field_for_identity_or_permission() -> None:
    forbidden = ("user", "identity", "admin", "approv", "permission", "unix", "group", "as_", "role")
    assert [f for f in SCHEMA_FIELDS if any(word in f for word in forbidden)] == []
    assert {*JobRequest.model_fields, "intent", "job", "question"} == SCHEMA_FIELDS


def test_the_fake_refuses_guided_json_which_vllm_would_silently_ignore(fake: FakeVllm) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="EMPTY", max_retries=0)
    schema = ModelReading.model_json_schema()
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": "2 a100"}],
            max_tokens=64,
            extra_body={"guided_json": schema},
        )
    assert fake.problems == [
        "sent 'guided_json', which vLLM ignores silently",
        "response_format is None, not json_schema",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2 A100s for 4 hours to run python train.py",  # a request read whole: confidence 1.0
        "why is job 1234 pending?",  # a plain question: 0.95
        "queue mine",  # slash-command syntax: the grammar's, whatever its confidence (0 here)
        "/gpu why 1234",
    ],
)
def test_the_fast_path_never_calls_the_model(fake: FakeVllm, text: str) -> None:
    routing = RoutedUnderstanding(reader_for(fake))
    routed = routing.understand(text)

    assert (routed.source, routed.degraded, routed.model_called) == ("grammar", None, False)
    assert routed.intent == grammar_intent(text)
    assert fake.requests == []
    assert routing.counts == RoutingCounts(grammar=1)


def test_command_syntax() -> None:
    assert [is_command_syntax(t) for t in ("why 12", "queue", " free a100 ", "/gpu anything at all")] == [
        True,
        True,
        True,
        True,
    ]
    assert [is_command_syntax(t) for t in ("why is 12 pending", "cancel my job from yesterday")] == [
        False,
        False,
    ]


def test_without_a_model_the_grammar_answers_everything() -> None:
    routed = RoutedUnderstanding(None).understand(UNSURE)
    assert (routed.source, routed.degraded, routed.intent) == ("grammar", None, grammar_intent(UNSURE))


def test_the_models_answer_is_used_when_the_text_supports_it(fake: FakeVllm) -> None:
    text = "could I maybe get a couple of h100 things for my experiment tomorrow, 3 hours, python exp.py"
    fake.script(Structured({**UNSURE_READING, "time_limit_minutes": 180, "command": "python exp.py"}))
    routing = RoutedUnderstanding(reader_for(fake))
    routed = routing.understand(text)

    assert (routed.source, routed.degraded, routed.unsupported) == ("llm", None, ())
    assert routed.intent == Intent(
        kind=IntentKind.SUBMIT,
        request=JobRequest(
            workload="batch", gpus=2, gpu_type="h100", time_limit_minutes=180, command="python exp.py"
        ),
    )
    assert routing.counts == RoutingCounts(llm=1)


def test_a_question_about_a_job_keeps_the_job_and_only_filter_fields(fake: FakeVllm) -> None:
    text = "hey whats up with my a100 thing 4242, stuck?"
    fake.script(Structured({"intent": "why_pending", "job": "4242", "gpu_type": "A100", "gpus": 4242}))
    routed = RoutedUnderstanding(reader_for(fake)).understand(text)

    assert routed.source == "llm"
    assert routed.intent == Intent(
        kind=IntentKind.WHY_PENDING, request=JobRequest(gpu_type="a100"), job="4242"
    )


@pytest.mark.parametrize(
    ("reply", "degraded"),
    [
        (
            RawText('{"intent": "submit", "gpus": 2'),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            RawText("Sure! Here is the JSON you asked for."),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            Structured({"intent": "launch_rocket"}),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            Structured({"intent": "submit", "gpus": "two"}),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            Structured({"intent": "submit", "gpus": 5000}),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            Structured({"intent": "submit", "mig_profile": "half"}),
            "the assistant gave an answer that does not fit the request form",
        ),
        (
            RawText('{"intent": "submit", "command": "python a', finish_reason="length"),
            "the assistant gave an answer that does not fit the request form",
        ),
        (HttpError(500), "the assistant answered with an error (HTTP 500)"),
        (
            HttpError(503, "Service Unavailable", "ServiceUnavailableError"),
            "the assistant answered with an error (HTTP 503)",
        ),
    ],
    ids=[
        "truncated-json",
        "prose",
        "unknown-intent",
        "wrong-type",
        "over-limit",
        "bad-pattern",
        "cut-off",
        "http-500",
        "http-503",
    ],
)
def test_a_bad_answer_falls_back_to_the_grammar(fake: FakeVllm, reply: Reply, degraded: str) -> None:
    fake.script(reply)
    routing = RoutedUnderstanding(reader_for(fake))
    routed = routing.understand(UNSURE)

    assert (routed.source, routed.degraded) == ("grammar_fallback", degraded)
    assert routed.intent == grammar_intent(UNSURE)
    assert routed.notice == f"Note: {degraded}, so the built-in parser read your message; check the details."
    assert len(fake.completions) == 1 and fake.problems == []
    assert routing.counts == RoutingCounts(fallback=1)


def test_a_slow_model_is_abandoned_at_the_client_timeout(fake: FakeVllm) -> None:
    fake.script(Delayed(10.0, Structured(UNSURE_READING)))
    routing = RoutedUnderstanding(reader_for(fake, timeout_s=0.5))
    started = time.perf_counter()
    routed = routing.understand(UNSURE)
    elapsed = time.perf_counter() - started

    assert 0.5 <= elapsed < 0.5 + 0.5
    assert (routed.source, routed.degraded) == (
        "grammar_fallback",
        "the assistant did not answer within 0.5 s",
    )
    assert routed.intent == grammar_intent(UNSURE)
    assert len(fake.completions) == 1  # max_retries=0: one try, no second wait


def test_the_default_timeout_is_said_as_in_the_design() -> None:
    settings = LlmSettings(url="http://127.0.0.1:9/v1")
    assert settings.timeout_s == 8
    reader = LlmReader.from_settings(settings)
    assert f"{reader.timeout_s:g}" == "8"


def test_an_unreachable_model_falls_back_at_once() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    routing = RoutedUnderstanding(
        LlmReader.from_settings(LlmSettings(url=f"http://127.0.0.1:{port}/v1", timeout_s=2))
    )
    started = time.perf_counter()
    routed = routing.understand(UNSURE)

    assert time.perf_counter() - started < 1.0
    assert (routed.source, routed.degraded) == ("grammar_fallback", "the assistant is unreachable")
    assert routed.intent == grammar_intent(UNSURE)


def test_a_model_name_the_server_does_not_serve(fake: FakeVllm) -> None:
    routed = RoutedUnderstanding(reader_for(fake, model="qwen-typo")).understand(UNSURE)
    assert (routed.source, routed.degraded) == (
        "grammar_fallback",
        "the assistant does not serve the model 'qwen-typo'",
    )
    assert fake.completions[0].status == 404


def test_an_invented_gpu_count_becomes_a_question(fake: FakeVllm) -> None:
    fake.script(Structured({**UNSURE_READING, "gpus": 8, "time_limit_minutes": 720}))
    routing = RoutedUnderstanding(reader_for(fake))
    routed = routing.understand(UNSURE)

    assert routed.source == "llm" and routed.degraded is None
    assert [(u.field, u.value) for u in routed.unsupported] == [("gpus", "8"), ("time_limit_minutes", "720")]
    assert routed.intent.kind == IntentKind.UNKNOWN
    assert routed.intent.message is not None
    assert "gpus 8 (no message asks for 8 GPUs)" in routed.intent.message
    assert "time limit minutes 720 (no message states a wall time of 720 minutes)" in routed.intent.message
    assert routing.counts == RoutingCounts(llm=1, grounding_rejections=1)


def test_a_follow_up_sends_the_conversation_and_keeps_the_draft(fake: FakeVllm) -> None:
    first = "2 A100s for 4 hours to run python train.py"
    draft = JobRequest(
        workload="batch", gpus=2, gpu_type="a100", time_limit_minutes=240, command="python train.py"
    )
    follow_up = "hmm actually make that four GPUs"  # "four of them" ties the number to no field
    fake.script(Structured({**draft.model_dump(), "intent": "submit", "gpus": 4}))
    routed = RoutedUnderstanding(reader_for(fake)).understand(follow_up, ConversationSoFar((first,), draft))

    assert (routed.source, routed.unsupported) == ("llm", ())
    assert routed.intent.request == draft.model_copy(update={"gpus": 4})
    lines = fake.completions[0].messages[1]["content"].splitlines()
    assert lines[:3] == [
        "Earlier messages in this conversation, oldest first:",
        f"1. {first}",
        "Current draft request: " + draft.model_dump_json(exclude_defaults=True),
    ]
    assert lines[3].startswith(HINT_LABEL)
    assert lines[4] == MESSAGE_LABEL + follow_up


def test_a_follow_up_may_not_invent_what_neither_message_nor_draft_says(fake: FakeVllm) -> None:
    draft = JobRequest(workload="batch", gpus=2, gpu_type="a100", command="python train.py")
    fake.script(Structured({**draft.model_dump(), "intent": "submit", "partition": "hugemem"}))
    routed = RoutedUnderstanding(reader_for(fake)).understand(
        "hmm actually make that longer", ConversationSoFar(("2 A100s to run python train.py",), draft)
    )
    assert [u.field for u in routed.unsupported] == ["partition"]
    assert routed.intent.kind == IntentKind.UNKNOWN


def test_model_only_calls_the_model_for_everything_and_never_falls_back(fake: FakeVllm) -> None:
    fake.script(Structured(UNSURE_READING), HttpError(500))
    routing = RoutedUnderstanding(reader_for(fake), fast_path=False, fallback=False)
    confident = routing.understand("why is job 1234 pending?")
    failed = routing.understand(UNSURE)

    assert (confident.source, confident.model_called) == ("llm", True)
    assert (failed.source, failed.degraded) == ("llm", "the assistant answered with an error (HTTP 500)")
    assert failed.intent.kind == IntentKind.UNKNOWN
    assert routing.counts == RoutingCounts(llm=2, grounding_rejections=1)  # the 1234 reply said gpus 2


def test_echo_returns_the_hint_so_the_model_agrees_with_the_grammar(fake: FakeVllm) -> None:
    fake.default = EchoHint(HINT_LABEL)
    routed = RoutedUnderstanding(reader_for(fake)).understand(UNSURE)
    assert (routed.source, routed.intent) == ("llm", grammar_intent(UNSURE))


def test_the_endpoint_lists_the_served_model(fake: FakeVllm) -> None:
    assert reader_for(fake).served_models() == [DEFAULT_MODEL]
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/models")]


def test_a_readings_round_trip_through_the_hint_form() -> None:
    intent = grammar_intent("2 A100s for 4 hours to run python train.py")
    assert intent_from_reading(reading_from_intent(intent)) == intent


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            RawText('{"intent": "submit", "command": "python a', finish_reason="length"),
            "The assistant gave an answer that does not fit the request form "
            "(the answer was cut off at the token limit).",
        ),
        (
            Structured({"intent": "submit", "gpus": 5000}),
            "The assistant gave an answer that does not fit the request form "
            "(gpus: Input should be less than or equal to 1024).",
        ),
        (
            Structured({"intent": "launch_rocket"}),
            "The assistant gave an answer that does not fit the request form (intent: Input should be "
            "'submit', 'status', 'queue', 'why_pending', 'capacity', 'cancel', 'digest', 'help' "
            "or 'unknown').",
        ),
    ],
    ids=["cut-off", "over-limit", "unknown-intent"],
)
def test_the_readers_errors_say_what_was_wrong(fake: FakeVllm, reply: Reply, message: str) -> None:
    fake.script(reply)
    with pytest.raises(AssistantAnswerInvalid) as raised:
        reader_for(fake).read(UNSURE, grammar_intent(UNSURE))
    assert raised.value.message == message
    assert isinstance(raised.value, ConciergeError)


def test_a_confident_change_to_a_draft_still_goes_to_the_model(fake: FakeVllm) -> None:
    draft = JobRequest(workload="batch", gpus=2, gpu_type="a100", command="python train.py")
    conversation = ConversationSoFar(("2 A100s to run python train.py",), draft)
    assert understand_with_confidence("4 GPUs")[1] == 1.0
    fake.script(Structured({**draft.model_dump(), "intent": "submit", "gpus": 4}))
    routing = RoutedUnderstanding(reader_for(fake))
    change = routing.understand("4 GPUs", conversation)
    question = routing.understand("why is job 1234 pending?", conversation)

    assert (change.source, change.intent.request) == ("llm", draft.model_copy(update={"gpus": 4}))
    assert (question.source, question.intent.job) == ("grammar", "1234")
    assert len(fake.completions) == 1


@pytest.mark.parametrize(
    "text", ["2 or 4 A100s for 3 hours, python x.py", "cancel 1201 and 1202", "make it 2 or 4 GPUs"]
)
def test_a_choice_or_a_list_of_jobs_is_asked_back_without_the_model(fake: FakeVllm, text: str) -> None:
    draft = JobRequest(workload="batch", gpus=2, gpu_type="a100", command="python train.py")
    conversation = ConversationSoFar(("2 A100s to run python train.py",), draft)
    routed = RoutedUnderstanding(reader_for(fake)).understand(text, conversation)

    assert (routed.source, routed.intent.kind) == ("grammar", IntentKind.UNKNOWN)
    assert routed.intent.message is not None and routed.intent.job is None
    assert fake.completions == []  # the model would pick one of the values, and both are in the words


@pytest.mark.parametrize("model_time", [None, 60])
def test_a_wall_time_counted_from_a_clock_time_is_the_grammars(
    fake: FakeVllm, model_time: int | None
) -> None:
    now = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    text = "could I maybe get a couple of h100 things until 6pm for my experiment, python x.py"
    hint, confidence = understand_with_confidence(text, now)
    assert confidence < HIGH_CONFIDENCE and hint.request.time_limit_minutes == 150
    reading = {"intent": "submit", "gpus": 2, "gpu_type": "h100", "command": "python x.py"}
    fake.script(Structured(reading | ({"time_limit_minutes": model_time} if model_time else {})))
    routing = RoutedUnderstanding(reader_for(fake), lambda t: understand_with_confidence(t, now))
    routed = routing.understand(text)

    assert (routed.source, routed.intent.kind, routed.unsupported) == ("llm", IntentKind.SUBMIT, ())
    assert routed.intent.request.time_limit_minutes == 150  # neither dropped nor the model's guess
    assert routed.notice is not None and '"until 6pm" is 2 h 30 min from now' in routed.notice


def test_json_object_mode_sends_llama_cpps_form_and_reads_the_text_answer() -> None:
    with FakeVllm(response_format="json_object") as server:
        server.script(Structured(UNSURE_READING))
        settings = LlmSettings(url=server.base_url, model=DEFAULT_MODEL, structured_output="json_object")
        routed = RoutedUnderstanding(LlmReader.from_settings(settings)).understand(UNSURE)
        assert server.problems == []
        [request] = server.completions
        assert request.body["response_format"]["schema"]["properties"].keys() == SCHEMA_FIELDS
        assert request.body["max_tokens"] == settings.max_tokens
    assert routed.source == "llm" and routed.degraded is None
    assert routed.intent.request.gpus == 2 and routed.intent.request.gpu_type == "h100"
