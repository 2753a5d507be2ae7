"""What the grammar asks back instead of guessing, and what it computes instead of defaulting.

Each family is built from a rule (a joining word × a unit, a number × a word no reader knows, a
clock time × a moment), not from the issue's sentences, so a new wording of the same rule is read
the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backends.types import IntentKind
from bot.understanding.grammar import HIGH_CONFIDENCE, understand, understand_in_detail

# A Wednesday afternoon, so that "tomorrow", a weekday and a clock time already past all occur.
NOW = datetime(2026, 12, 2, 15, 30, tzinfo=timezone(timedelta(hours=1)))

_CHOICES = [  # (text with {a} and {b}, the field the choice is about, how its value is printed)
    ("{a} or {b} A100s for 2 hours", "gpus", "{}"),
    ("{a} or maybe {b} gpus, 1 hour", "gpus", "{}"),
    ("{a}-{b} H100s for an hour", "gpus", "{}"),
    ("2 gpus for {a} or {b} hours", "time_limit_minutes", "{} h"),
    ("2 gpus for {a} hours, maybe {b}", "time_limit_minutes", "{} h"),
    ("2 gpus for between {a} and {b} hours", "time_limit_minutes", "{} h"),
    ("2 gpus for {a} to {b} days", "time_limit_minutes", "{} days"),
    ("{a} or {b} nodes with 4 gpus each", "nodes", "{}"),
    ("1 gpu and {a}GB or {b}GB of ram", "memory_gb", "{}"),
    ("1 gpu, {a} or perhaps {b} cpus", "cpus", "{}"),
]


@pytest.mark.parametrize(("template", "field", "shown"), _CHOICES)
@pytest.mark.parametrize(("a", "b"), [(2, 4), (3, 6)])
def test_a_choice_between_two_values_is_asked_not_picked(
    template: str, field: str, shown: str, a: int, b: int
) -> None:
    understanding = understand_in_detail(f"{template.format(a=a, b=b)}, python train.py")
    intent = understanding.intent
    assert intent.kind == IntentKind.UNKNOWN
    assert getattr(intent.request, field) is None  # neither value is taken
    assert intent.request.command == "python train.py"  # what was read is kept
    assert intent.message is not None and "which is it?" in intent.message
    assert f"{shown.format(a)} or {shown.format(b)}" in intent.message
    # A model would pick one of two values the words both state: no model is asked.
    assert understanding.confidence >= HIGH_CONFIDENCE


@pytest.mark.parametrize(
    ("first", "second"), [("A100", "H100"), ("2 A100s", "1 H100"), ("an L40S", "a V100")]
)
def test_a_choice_between_two_gpu_models_is_asked(first: str, second: str) -> None:
    intent = understand(f"{first} or {second} for 2 hours: python x.py")
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.request.gpu_type is None
    assert intent.message is not None and f'"{first} or {second}"' in intent.message, intent.message


@pytest.mark.parametrize(
    "text",
    [
        "2 A100s or better for 2 hours: python x.py",  # one value and a wish
        "2 gpus for 4 hours or so: python x.py",
        "run `python a.py or b.py` on 2 gpus for 1h",  # inside the command
        "2 gpus for 1 hour: python sweep.py --lr 1e-3 --or 4",
    ],
)
def test_one_value_with_words_around_it_is_no_choice(text: str) -> None:
    assert understand(text).kind == IntentKind.SUBMIT


@pytest.mark.parametrize("written", ["4h3", "2hr75", "1d7h9"])
def test_a_number_run_into_letters_no_reader_placed_is_named_back(written: str) -> None:
    intent = understand(f"1 A100 for {written}, python x.py")
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and f'"{written}"' in intent.message


@pytest.mark.parametrize("word", ["Stunden", "heures", "horas", "ore", "godzin", "hourz"])
@pytest.mark.parametrize("number", ["4", "12"])
def test_a_number_no_reader_placed_is_named_back(word: str, number: str) -> None:
    intent = understand(f"2 A100s for {number} {word} to run python train.py")
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and f'"{number} {word}"' in intent.message
    assert (intent.request.gpus, intent.request.gpu_type) == (2, "a100")
    assert intent.request.time_limit_minutes is None  # never the default in silence
    assert intent.request.command == "python train.py"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("zwei A100 für vier Stunden, python x.py", "für vier Stunden"),
        ("2 A100 während drei Stunden, python x.py", "während drei Stunden"),
        ("4 A100 durante dos días, python x.py", "dos días"),
    ],
)
def test_words_in_another_language_are_named_back(text: str, named: str) -> None:
    intent = understand(text)
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and named in intent.message
    assert intent.request.gpu_type == "a100" and intent.request.command == "python x.py"


@pytest.mark.parametrize(
    "text",
    [
        "2 A100s for 4 hours to redo job 1001: python x.py",  # a job's id is a reference
        "1 gpu for 1 hour to run python a.py, use uid 0",  # an identity is never read from words
        "need a100s for a day, 4 of them, bash long.sh",  # a count of the GPUs named before
        # a number after a word of its own is that word's value; a version is a name
        "2 A100s with cuda 12.4 for 3 hours, python x.py",
        "1 gpu, 2 hours, batch size 64, python x.py",
        "deploy vllm 0.6.3 serving org/Model-7B on 1 A100",
        # beside a request that lacks nothing, a number is the person's own business
        "2 gpus for 5 hours with 8 workers, python x.py",
        "4 A100s for 12 hours for the 2024 benchmark: bash run.sh",
        "Résumé training: 2 A100s for 3 hours, python resume.py",
    ],
)
def test_numbers_that_are_references_or_counts_are_not_asked_about(text: str) -> None:
    assert understand(text).kind == IntentKind.SUBMIT


def test_a_count_of_them_counts_the_gpus_named() -> None:
    assert understand("need H100s for a day, 4 of them, bash long.sh").request.gpus == 4


@pytest.mark.parametrize(
    "length",
    [
        "overnight",
        "for a few hours",
        "for a while",
        "over the weekend",
        "as long as possible",
        "for the rest of the day",
        "for the afternoon",
        "for tonight",
    ],
)
def test_a_length_without_a_length_is_asked_about(length: str) -> None:
    intent = understand(f"2 A100s {length}, python sweep.py")
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.request.time_limit_minutes is None and intent.request.gpus == 2
    assert intent.message is not None and "how long" in intent.message


@pytest.mark.parametrize(
    ("end", "minutes"),
    [
        ("until 6pm", 150),
        ("by 18:30", 180),
        ("till 6.45 pm", 195),
        ("before midnight", 510),
        ("until noon tomorrow", 1230),
        ("by tomorrow at 9am", 1050),
        ("until 9am", 1050),  # past today: tomorrow
        ("until Friday 5pm", 2 * 1440 + 90),
        ("until wednesday 9am", 7 * 1440 - 390),  # today's is past: next week's
    ],
)
def test_a_clock_time_end_is_counted_from_now(end: str, minutes: int) -> None:
    understanding = understand_in_detail(f"1 H100 {end}, python x.py", NOW)
    intent = understanding.intent
    assert understanding.confidence >= HIGH_CONFIDENCE  # a model, knowing no clock, could only guess
    assert intent.kind == IntentKind.SUBMIT
    assert intent.request.time_limit_minutes == minutes
    assert intent.message is not None and f'"{end}"' in intent.message and "from now" in intent.message


@pytest.mark.parametrize(
    ("end", "why"),
    [
        ("until tomorrow morning", "no clock time"),
        ("by end of day", "no clock time"),
        ("till Friday", "no clock time"),
        ("until tonight", "no clock time"),
        ("until 9am today", "passed already"),
        ("until 25:00", "not a time of day"),
    ],
)
def test_an_end_that_gives_no_moment_is_asked_about(end: str, why: str) -> None:
    intent = understand(f"1 H100 {end}, python x.py", NOW)
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.request.time_limit_minutes is None
    assert intent.message is not None and f'"{end}" ' in intent.message and why in intent.message


def test_a_length_and_an_end_keep_the_length() -> None:
    intent = understand("1 H100 for 3 hours, results by 6pm, python x.py", NOW)
    assert (intent.kind, intent.request.time_limit_minutes) == (IntentKind.SUBMIT, 180)


@pytest.mark.parametrize("question", ["cancel {}", "kill {} now", "status of {}", "why are {} pending"])
@pytest.mark.parametrize(
    ("jobs", "named"),
    [("1201 and 1202", ("1201", "1202")), ("7, 8 and 9", ("7", "8", "9")), ("job 5 plus job 6", ("5", "6"))],
)
def test_several_jobs_in_one_question_are_asked_one_by_one(
    question: str, jobs: str, named: tuple[str, ...]
) -> None:
    understanding = understand_in_detail(question.format(jobs))
    intent = understanding.intent
    assert intent.kind == IntentKind.UNKNOWN and intent.job is None
    assert intent.message is not None and all(job in intent.message for job in named)
    assert understanding.confidence >= HIGH_CONFIDENCE  # a model would pick the first


@pytest.mark.parametrize(
    "text",
    [
        # a report of something past
        "fyi yesterday's run on 8 H100s took 14 hours",
        "my job on 4 A100s finished last night",
        "the 2 L40S ran out of memory earlier today",
        # another task
        "write a haiku about H100s",
        "tell me a joke about GPUs",
        "compose a poem for the 8 A100s",
        # talk about the GPUs, or an opinion
        "are H100s faster than A100s?",
        "what is the difference between an A100 and an H100",
        "H100s are awesome",
        # a question about them, whatever verb it holds
        "what's the best way to run on 4 H100s",
        "which partition should I use for 8 H100s?",
        "we just got 16 new H200s!",
        # a GPU named with no amount, no request word and words besides: a mention
        "the H100s are so fast",
        "our A100 nodes look healthy today",
    ],
)
def test_talk_that_mentions_gpus_is_not_a_request(text: str) -> None:
    intent = understand(text)
    assert intent.kind == IntentKind.UNKNOWN
    assert intent.message is not None and "not a request" in intent.message
    assert "2 A100s for 4 hours to run python3 train.py" in intent.message  # what it can do instead


@pytest.mark.parametrize(
    "text",
    [
        "yesterday's run took 14 hours, I need 8 H100s again for 16 hours",
        "please 2 A100s for 4 hours",
        "how about 2 A100s for 3 hours",
        "can I have 2 H100s for 2 hours?",
        "2 A100s, faster than last time please",
        "2 A100s for 3 hours like last time",  # a time alone is a reference, not a report
        "I was hoping for 2 A100s for 3 hours",
        "write-heavy job: python etl.py on 1 gpu",  # something to run is a request whatever else
        "H100 please",
        "use H100 instead",  # a change to a draft in a thread
    ],
)
def test_a_request_with_the_same_words_is_still_a_request(text: str) -> None:
    assert understand(text).kind == IntentKind.SUBMIT
