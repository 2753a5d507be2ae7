"""What a text asks for, which job it is about, and what happens when it cannot be understood."""

from __future__ import annotations

import time

import pytest

from backends.types import Intent, IntentKind
from bot.understanding.grammar import (
    HIGH_CONFIDENCE,
    MAX_TEXT_CHARS,
    understand,
    understand_in_detail,
    understand_with_confidence,
)


@pytest.mark.parametrize(
    ("text", "kind", "job"),
    [
        ("show the queue", IntentKind.QUEUE, None),
        ("what's in the queue?", IntentKind.QUEUE, None),
        ("list my jobs", IntentKind.QUEUE, None),
        ("what's running", IntentKind.QUEUE, None),
        ("squeue", IntentKind.QUEUE, None),
        ("why is 1234 pending", IntentKind.WHY_PENDING, "1234"),
        ("why isn't my deployment vllm-mistral running?", IntentKind.WHY_PENDING, "vllm-mistral"),
        ("when will job 881 start?", IntentKind.WHY_PENDING, "881"),
        ("my job 2020 has been waiting for hours, why?", IntentKind.WHY_PENDING, "2020"),
        ("what is deployment bert-serving waiting for?", IntentKind.WHY_PENDING, "bert-serving"),
        ("how many H100s are free?", IntentKind.CAPACITY, None),
        ("free gpus on partition gpu?", IntentKind.CAPACITY, None),
        ("what GPUs are available", IntentKind.CAPACITY, None),
        ("is there a free H200?", IntentKind.CAPACITY, None),
        ("cancel 4242", IntentKind.CANCEL, "4242"),
        ("kill job 12", IntentKind.CANCEL, "12"),
        ("stop my deployment llm-inference", IntentKind.CANCEL, "llm-inference"),
        ("cancel job 1234_5", IntentKind.CANCEL, "1234_5"),
        ("cancel my llama-sft job", IntentKind.CANCEL, "llama-sft"),
        ("status of job 6001", IntentKind.STATUS, "6001"),
        ("how is 77 doing", IntentKind.STATUS, "77"),
        ("is 9001 done yet?", IntentKind.STATUS, "9001"),
        ("why did job 321 fail?", IntentKind.STATUS, "321"),
        ("send the utilisation report", IntentKind.DIGEST, None),
        ("gpu usage digest", IntentKind.DIGEST, None),
        ("help", IntentKind.HELP, None),
        ("help me", IntentKind.HELP, None),
        ("what can you do", IntentKind.HELP, None),
        ("how do I request a GPU?", IntentKind.HELP, None),
        # the same questions reworded: a look at the queue by any verb or pronoun
        ("what's my queue", IntentKind.QUEUE, None),
        ("how does the queue look?", IntentKind.QUEUE, None),
        ("show me everything that's running", IntentKind.QUEUE, None),
        ("list all that is pending", IntentKind.QUEUE, None),
        ("tell me what's queued", IntentKind.QUEUE, None),
        ("what's in my queue right now", IntentKind.QUEUE, None),
        ("what do I have running", IntentKind.QUEUE, None),
        ("what is everyone running", IntentKind.QUEUE, None),
        ("is anything of mine pending?", IntentKind.QUEUE, None),
        ("who's hogging the GPUs", IntentKind.QUEUE, None),
        ("do we have any free A100s", IntentKind.CAPACITY, None),
        ("anything free?", IntentKind.CAPACITY, None),
        ("whats up with job 55", IntentKind.STATUS, "55"),
        ("any news on 1201?", IntentKind.STATUS, "1201"),
        ("where is my job 1234 at", IntentKind.STATUS, "1234"),
        ("what happened with 5678", IntentKind.STATUS, "5678"),
        ("how much did we use the GPUs this week", IntentKind.DIGEST, None),
        # usage by whom and over what period is the usage report
        ("gpu-hours by user for the last 7 days", IntentKind.DIGEST, None),
        ("GPU time per team this month", IntentKind.DIGEST, None),
        ("who used the most GPUs yesterday?", IntentKind.DIGEST, None),
        ("usage by account since Monday", IntentKind.DIGEST, None),
        # what the concierge can do
        ("what else can you do?", IntentKind.HELP, None),
        ("what are your capabilities", IntentKind.HELP, None),
        ("how can you help me?", IntentKind.HELP, None),
        ("what are you able to do", IntentKind.HELP, None),
        ("what commands do you understand", IntentKind.HELP, None),
    ],
)
def test_questions_and_orders(text: str, kind: IntentKind, job: str | None) -> None:
    intent = understand(text)
    assert (intent.kind, intent.job) == (kind, job)
    assert intent.request.workload is None  # only a submit has a workload


@pytest.mark.parametrize(
    ("text", "kind", "job"),
    [
        ("why is 'my-job' pending", IntentKind.WHY_PENDING, "my-job"),
        ('cancel "llama-sft"', IntentKind.CANCEL, "llama-sft"),
        ("status of `4242`", IntentKind.STATUS, "4242"),
    ],
)
def test_a_quoted_job_reference_is_the_job_not_a_command(text: str, kind: IntentKind, job: str) -> None:
    intent = understand(text)
    assert (intent.kind, intent.job, intent.request.command) == (kind, job, None)


def test_a_status_question_about_no_job_is_a_look_at_the_queue() -> None:
    assert understand("what's the status of my jobs").kind == IntentKind.QUEUE


def test_questions_keep_their_filters() -> None:
    assert understand("how many H100s are free?").request.gpu_type == "h100"
    assert understand("free gpus on partition gpu?").request.partition == "gpu"
    assert understand("stop my deployment llm-inference").request.target == "k8s"


@pytest.mark.parametrize(
    "text",
    [
        "queue python eval.py with 1 T4, 20 min",  # "queue" the verb
        "run python status.py on 2 gpus",  # a question word inside the command
        "give me a free gpu for 2 hours to run python x.py",
        "help me run python x.py on 2 gpus for an hour",
        "2 gpus for a week, python usage_by_user.py --gpu-hours",  # usage words in the command
    ],
)
def test_requests_that_contain_question_words_are_requests(text: str) -> None:
    assert understand(text).kind == IntentKind.SUBMIT


@pytest.mark.parametrize(
    "text", ["", "   ", "asdf qwerty", "make me a sandwich", "what's the weather like", "deploy"]
)
def test_unknown_says_what_was_missing_and_how_to_ask(text: str) -> None:
    intent = understand(text)
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None
    assert "2 A100s for 4 hours to run python3 train.py" in intent.message
    assert intent.to_contract()["message"] == intent.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("5000 GPUs for an hour: python huge.py", "GPUs per node is 5000"),
        ("2 gpus for 400 days: python forever.py", "wall time is 400 days, more than the 366 days"),
        ("2 gpus for 0 hours: python x.py", "less than the minimum of 1"),
        ("1 gpu, image a/b:1, port 99999", "port is 99999"),
        ("99999999999999999999 gpus, python x.py", "GPUs per node"),
    ],
)
def test_values_a_request_cannot_hold_are_refused_by_name(text: str, words: str) -> None:
    intent = understand(text)
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and words in intent.message


def test_too_long_text_is_refused_before_reading() -> None:
    intent = understand("a" * (MAX_TEXT_CHARS + 1))
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and "limit" in intent.message


def test_confidence_is_high_when_every_word_was_placed() -> None:
    intent, confidence = understand_with_confidence("I need 4 A100 GPUs for 8 hours to run python train.py")
    assert intent.kind == IntentKind.SUBMIT and confidence >= HIGH_CONFIDENCE


def test_confidence_drops_with_unplaced_words_and_names_them() -> None:
    understanding = understand_in_detail("two A100s, urgently, python sweep.py")
    assert understanding.intent.kind == IntentKind.SUBMIT
    assert understanding.confidence < HIGH_CONFIDENCE
    assert understanding.unread_words == ("urgently",)


def test_unknown_has_no_confidence() -> None:
    assert understand_with_confidence("asdf")[1] == 0.0


def test_fast_enough_for_the_hot_path() -> None:
    # The benchmark (bench/parser_throughput.py) measures the figure; this guards against an order of
    # magnitude regression (e.g. a regex compiled per call), with a margin for a loaded test machine.
    texts = ["I need 4 A100 GPUs for 8 hours to run python train.py on slurm", "why is 1234 pending", "help"]
    started = time.perf_counter()
    for _ in range(300):
        for text in texts:
            understand(text)
    per_request = (time.perf_counter() - started) / 900
    assert per_request < 0.002


def test_result_is_a_valid_intent() -> None:
    intent = understand("8 GPUs across 2 nodes, 1 day, bash ddp.sh")
    assert Intent.model_validate(intent.model_dump()) == intent
