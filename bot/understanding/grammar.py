"""The deterministic parser: text → `Intent`, in microseconds, never raising.

Order of reading: the command is taken out first (nothing inside it is ever read as a detail),
then the rest is read both as a question about existing jobs and as a request for GPUs. A question
that opens the sentence wins; otherwise a request that names resources (GPUs, a command, an image, a
model, a MIG slice) wins over a question word found in passing; otherwise the weak question; otherwise
`unknown` with a message that says what was missing and how to phrase it.

Nothing is guessed silently. A request that gives one field two values ("2 or 4 A100s"), a
question about several jobs at once ("cancel 1201 and 1202"), a number the readers could not place
("4 Stunden"), or a length or an end with no clock in it ("overnight", "until tomorrow morning") is
answered with a question back: `unknown`, with what was read so far in its request and the question
in its message (the form every door already shows, shared/contracts/parse.md has no other). A
clock-time end ("until 6pm") becomes the minutes from `now`, said in the request's message. Talk
that mentions GPUs without asking for them ("write a haiku about H100s") is not a request
(chat.py).

Confidence (for routing to the language model later): 0.95 for a question asked plainly, 0.7 for one
recognised from a word in passing, for a request the share of its words that were read or are known
filler (at least 0.3), 1 for a choice or a list of jobs asked back (a model would pick one, and
either is written in the words, so grounding could not catch it), and 0 for unknown;
HIGH_CONFIDENCE (0.9) and above needs no model. The words nobody read are returned too, so a caller
can show or log what the grammar did not understand; an end read as a clock time counts as read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from backends.durations_text import duration
from backends.types import Intent, IntentKind, JobRequest
from bot.understanding.chat import is_talk
from bot.understanding.commands import split_command
from bot.understanding.deadlines import Deadline, find_deadline
from bot.understanding.details import Details, read_details
from bot.understanding.doubts import find_choices, foreign_words, unread_quantity, vague_length
from bot.understanding.lazy_re import lazy
from bot.understanding.queries import Question, other_jobs, recognise_question
from bot.understanding.vocabulary import FILLER

# Beyond this the text is not a chat request; a long script belongs in a file the command names.
MAX_TEXT_CHARS = 20_000
HIGH_CONFIDENCE = 0.9
ASKED_BACK = 1.0  # a question back that no reader may answer by picking

EXAMPLES = (
    '"2 A100s for 4 hours to run python3 train.py"',
    '"why is job 1234 pending?"',
    '"how many H100s are free?"',
)
# A question about existing jobs keeps only the fields that can filter them (the model's reading too).
QUERY_FILTER_FIELDS = frozenset(
    {"target", "gpu_type", "gpu_memory_gb", "mig_profile", "partition", "account", "qos", "namespace"}
)
_RESOURCE_FIELDS = ("gpus", "gpu_type", "mig_profile", "command", "image", "model", "gpu_memory_gb")
_GPU_FIELDS = ("gpus", "gpu_type", "mig_profile", "shared", "cpu_only")
_AMOUNT_FIELDS = (
    "gpus",
    "gpu_memory_gb",
    "mig_profile",
    "time_limit_minutes",
    "nodes",
    "cpus",
    "memory_gb",
    "replicas",
)
_SUPPORTING_FIELDS = ("time_limit_minutes", "nodes", "cpus", "memory_gb", "replicas", "port", "shared")
_SUBMIT_VERB_RE = lazy(
    r"\b(?:need|want|give|get|run|submit|schedule|queue|sbatch|allocate|reserve|book|request|deploy|serve"
    r"|launch|start|train|fine-?tune|i'?d\s+like|please|pls)\b",
    re.IGNORECASE,
)
_QUOTES_RE = lazy("[`'\"\u2018\u2019\u201c\u201d]")
_GPU_WORD_RE = lazy(r"\bgpus?\b", re.IGNORECASE)
_WORD_RE = lazy(r"[a-z0-9][a-z0-9'\-]*", re.IGNORECASE)
_MAY_END_AT_RE = lazy(r"\b(?:until|till|til|by|before|through|thru|later|end(?:ing)?\s+at)\b", re.IGNORECASE)
_WALL_TIME_NOTE = "Wall time:"
_VERBS = {IntentKind.WHY_PENDING: "why", IntentKind.STATUS: "status", IntentKind.CANCEL: "cancel"}


@dataclass(frozen=True)
class Understanding:
    """What the grammar made of a text, how sure it is, and the words it could not place."""

    intent: Intent
    confidence: float
    unread_words: tuple[str, ...] = ()

    @property
    def notice(self) -> str | None:
        """What a door shows beside a request it plans (how a clock time became a wall time)."""
        return self.intent.message if self.intent.kind == IntentKind.SUBMIT else None

    @property
    def model_called(self) -> bool:
        return False  # the grammar's own reading (bot.engine.Understood)


def _unknown(message: str) -> Understanding:
    return Understanding(Intent(kind=IntentKind.UNKNOWN, message=message), 0.0)


def _not_understood(text: str) -> str:
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    examples = ", ".join(EXAMPLES)
    if not shown:
        return f"The request is empty. Say what you need or ask about a job, e.g. {examples}."
    return (
        f'I could not understand "{shown}": it names no GPUs, command, container image or model, and it is '
        "not a question I know (the queue, a job's status, why a job is pending, free GPUs, cancelling a "
        f"job, the usage report, help). Try, for example: {examples}."
    )


_FIELD_WORDS = {
    "gpus": "GPUs per node",
    "gpu_type": "GPU type",
    "mig_profile": "MIG slice",
    "gpu_memory_gb": "GPU memory (GB)",
    "nodes": "nodes",
    "replicas": "replicas",
    "time_limit_minutes": "wall time",
    "cpus": "CPUs",
    "memory_gb": "memory (GB)",
    "port": "port",
    "command": "command",
    "image": "image",
    "model": "model",
}


def _invalid(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "request"
        words = _FIELD_WORDS.get(key, key)
        limits = problem.get("ctx") or {}
        given = (
            _shown(key, problem.get("input"))
            if isinstance(problem.get("input"), int)
            else problem.get("input")
        )
        if "le" in limits:
            problems.append(
                f"{words} is {given}, more than the {_shown(key, limits['le'])} a request may ask"
            )
        elif "ge" in limits:
            problems.append(f"{words} is {given}, less than the minimum of {_shown(key, limits['ge'])}")
        else:
            problems.append(f"{words} {problem.get('input')!r} is not usable: {problem['msg']}")
    return (
        "I understood the request, but it cannot be submitted as written: "
        + "; ".join(problems)
        + f". Change that and ask again, e.g. {EXAMPLES[0]}."
    )


def _unread_words(leftover: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD_RE.findall(leftover) if w.lower() not in FILLER)


def _asked_back(fields: dict[str, Any], question: str, confidence: float = 0.0) -> Understanding:
    """A question back, carrying what was read so far (printed by `parse`, kept by a thread)."""
    try:
        request = JobRequest(**fields)
    except ValidationError:
        request = JobRequest()
    return Understanding(Intent(kind=IntentKind.UNKNOWN, request=request, message=question), confidence)


def _shown(name: str, value: Any) -> str:
    return duration(minutes=value) if name == "time_limit_minutes" else str(value)


def _read_so_far(fields: dict[str, Any]) -> str:
    said = [f"{_FIELD_WORDS[k]} {_shown(k, v)}" for k, v in fields.items() if k in _FIELD_WORDS]
    return f" What I read: {'; '.join(said)}." if said else ""


def _question(question: Question, details: Details, text: str) -> Understanding:
    filters = {k: v for k, v in details.fields.items() if k in QUERY_FILTER_FIELDS}
    try:
        request = JobRequest(**filters)
    except ValidationError:
        request = JobRequest()  # a filter that cannot be valid is dropped, not fatal to the question
    others = other_jobs(text, question.job) if question.job and question.kind in _VERBS else ()
    if question.job and others:
        verb = _VERBS[question.kind]
        jobs = (question.job, *others)
        done = "nothing was cancelled" if question.kind == IntentKind.CANCEL else "I answered nothing yet"
        ask = ", then ".join(f'"{verb} {job}"' for job in jobs)
        return _asked_back(
            filters,
            f"You named {len(jobs)} jobs ({', '.join(jobs)}) and I take one job per message, so {done}. "
            f"Say {ask}.",
            ASKED_BACK,
        )
    intent = Intent(kind=question.kind, request=request, job=question.job)
    return Understanding(intent, 0.95 if question.plainly_asked else 0.7)


def _talk(text: str) -> str:
    shown = " ".join(text.split())
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return (
        f'"{shown}" reads as talk about GPUs, not a request for them, so nothing was prepared. I prepare GPU '
        f"jobs ({EXAMPLES[0]}) and answer about the queue, a job's status, why a job is pending, free "
        'GPUs, cancelling a job and the usage report; say "help" for more.'
    )


def _blanked(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _deadline(remainder: str, now: datetime | None) -> Deadline | None:
    if not _MAY_END_AT_RE.search(remainder):
        return None
    return find_deadline(remainder, now or datetime.now().astimezone())


def _doubt(
    fields: dict[str, Any], remainder: str, leftover: str, deadline: Deadline | None
) -> Understanding | str | None:
    """A question back for what cannot be taken as written; else the note on a clock-time end
    (the wall time set in `fields`), or None."""
    choices = find_choices(remainder)
    if choices:
        given = []
        for choice in choices:
            offered = " and ".join(
                f"{_FIELD_WORDS[name]} ({_shown(name, a)} or {_shown(name, b)})"
                for name, (a, b) in choice.values.items()
            )
            given.append(f'"{choice.phrase}" gives two values of {offered}')
            for name in choice.values:
                fields.pop(name, None)
        return _asked_back(
            fields,
            f"{'; '.join(given)}, and I will not pick for you: which is it? Ask again with one value."
            + _read_so_far(fields),
            ASKED_BACK,
        )
    note = None
    if "time_limit_minutes" not in fields and deadline is not None:
        if deadline.minutes is None:
            return _asked_back(
                fields,
                f'"{deadline.phrase}" {deadline.problem}, so I cannot tell how long the job should run: say '
                'a length ("for 14 hours") or a clock time ("until 9am tomorrow").' + _read_so_far(fields),
            )
        fields["time_limit_minutes"] = deadline.minutes
        until = f" (until {deadline.moment:%a %H:%M %Z})".replace(" )", ")") if deadline.moment else ""
        note = (
            f'{_WALL_TIME_NOTE} "{deadline.phrase}" is {duration(minutes=deadline.minutes)} from now{until}.'
        )
    elif "time_limit_minutes" not in fields and (vague := vague_length(remainder)) is not None:
        return _asked_back(
            fields,
            f'"{vague}" says no length of time, and I will not guess one: how long should the job run? Say '
            'a length ("for 14 hours") or a clock time ("until 9am tomorrow").' + _read_so_far(fields),
        )
    lacking = "time_limit_minutes" not in fields or not any(k in fields for k in _GPU_FIELDS)
    quantity = unread_quantity(leftover, lacking=lacking) or (foreign_words(leftover) if lacking else None)
    if quantity is not None:
        return _asked_back(
            fields,
            f'I could not read "{quantity}", so nothing was prepared. Say it another way, e.g. "4 hours", '
            '"2 A100s", "64GB RAM" (or put a command in backticks).' + _read_so_far(fields),
        )
    return note


def _submit(details: Details, command: str | None, remainder: str, now: datetime | None) -> Understanding:
    if details.problem is not None:
        return _unknown(details.problem)
    fields: dict[str, Any] = dict(details.fields)
    if command is not None:
        fields["command"] = command
    deadline = _deadline(remainder, now)
    # The words of an end read as a moment are read: a model asked because of them could only guess.
    leftover = (
        details.leftover if deadline is None else _blanked(details.leftover, deadline.start, deadline.end)
    )
    doubt = _doubt(fields, remainder, leftover, deadline)
    if isinstance(doubt, Understanding):
        return doubt
    fields.setdefault("workload", "batch")
    try:
        request = JobRequest(**fields)
    except ValidationError as error:
        # What is within bounds is carried on, so the policy can say at once what else is over a limit.
        past = {str(problem["loc"][0]) for problem in error.errors() if problem["loc"]}
        return _asked_back({k: v for k, v in fields.items() if k not in past}, _invalid(error))
    unread = _unread_words(leftover)
    words = len(_WORD_RE.findall(leftover)) or 1
    confidence = max(0.3, 1.0 - len(unread) / words) if unread else 1.0
    intent = Intent(kind=IntentKind.SUBMIT, request=request, message=doubt)
    return Understanding(intent, round(confidence, 3), unread)


def understand_in_detail(text: str, now: datetime | None = None) -> Understanding:
    """The intent in `text`, the grammar's confidence in it (0 to 1), and the words it could not place.

    `now` (aware) is the moment a clock-time end ("until 6pm") is counted from; the machine's clock
    when not given, read only when the words name such an end."""
    if len(text) > MAX_TEXT_CHARS:
        return _unknown(
            f"The request is {len(text):,} characters long; the limit is {MAX_TEXT_CHARS:,}. Put a long "
            'script in a file and ask to run that file, e.g. "2 A100s for 4 hours to run bash job.sh".'
        )
    split = split_command(text)
    question = recognise_question(split.remainder)
    if question is not None and question.job is None and split.command is not None:
        # "cancel 'llama-sft'": what looked like a quoted command is the job the question is about.
        question = recognise_question(_QUOTES_RE.sub(" ", text)) or question
    details = read_details(split.remainder)
    names_resources = split.command is not None or any(k in details.fields for k in _RESOURCE_FIELDS)
    if question is not None and (question.plainly_asked or not names_resources):
        return _question(question, details, split.remainder)
    # "I need GPUs", "2 hours on a node please": a request whose details are missing is still a request.
    if names_resources or (
        (any(k in details.fields for k in _SUPPORTING_FIELDS) or _GPU_WORD_RE.search(split.remainder))
        and _SUBMIT_VERB_RE.search(split.remainder)
    ):
        has_something_to_run = (
            split.command is not None or "image" in details.fields or "model" in details.fields
        )
        amounts = any(k in details.fields for k in _AMOUNT_FIELDS)
        unread = len(_unread_words(details.leftover))
        talks = is_talk(split.remainder, states_amounts=amounts, unread_words=unread)
        if not has_something_to_run and talks and not find_choices(split.remainder):
            return _unknown(_talk(text))
        return _submit(details, split.command, split.remainder, now)
    if _GPU_WORD_RE.search(split.remainder) and is_talk(split.remainder):
        return _unknown(_talk(text))
    if find_choices(split.remainder):  # "for 3 or 6 hours", a follow-up in a thread: asked back all the same
        asked = _doubt(dict(details.fields), split.remainder, details.leftover, None)
        if isinstance(asked, Understanding):
            return asked
    return _unknown(_not_understood(text))


def wall_time_from_the_clock(intent: Intent) -> int | None:
    """The wall time of a request the grammar counted from a clock-time end ("until 6pm"), else None:
    a reader that knows no clock (the language model) must not replace or drop it."""
    if intent.kind != IntentKind.SUBMIT or not (intent.message or "").startswith(_WALL_TIME_NOTE):
        return None
    return intent.request.time_limit_minutes


def wall_time_until(text: str, now: datetime | None = None) -> int | None:
    """Minutes from `now` to the clock-time end a text names ("until 6pm"), for a follow-up that
    says only that; None when it names none, or one without a clock ("until tomorrow morning")."""
    deadline = _deadline(text, now)
    return deadline.minutes if deadline is not None else None


def understand_with_confidence(text: str, now: datetime | None = None) -> tuple[Intent, float]:
    """The intent in `text` and the grammar's confidence in it; ≥ HIGH_CONFIDENCE needs no model."""
    understanding = understand_in_detail(text, now)
    return understanding.intent, understanding.confidence


def understand(text: str, now: datetime | None = None) -> Intent:
    """The intent in `text`. Never raises: what cannot be understood is `unknown` with a message."""
    return understand_in_detail(text, now).intent
