"""The deterministic parser: text → `Intent`, in microseconds, never raising.

Order of reading: the command is taken out first (nothing inside it is ever read as a detail),
then the rest is read both as a question about existing jobs and as a request for GPUs. A question
that opens the sentence wins; otherwise a request that names resources (GPUs, a command, an image, a
model, a MIG slice) wins over a question word found in passing; otherwise the weak question; otherwise
`unknown` with a message that says what was missing and how to phrase it.

Confidence (for routing to the language model later): 0.95 for a question asked plainly, 0.7 for one
recognised from a word in passing, for a request the share of its words that were read or are known
filler (at least 0.3), and 0 for unknown; HIGH_CONFIDENCE (0.9) and above needs no model. The
words nobody read are returned too, so a caller can show or log what the grammar did not understand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from backends.types import Intent, IntentKind, JobRequest
from bot.understanding.commands import split_command
from bot.understanding.details import Details, read_details
from bot.understanding.lazy_re import lazy
from bot.understanding.queries import Question, recognise_question
from bot.understanding.vocabulary import FILLER

# Beyond this the text is not a chat request; a long script belongs in a file the command names.
MAX_TEXT_CHARS = 20_000
HIGH_CONFIDENCE = 0.9

EXAMPLES = (
    '"2 A100s for 4 hours to run python train.py"',
    '"why is job 1234 pending?"',
    '"how many H100s are free?"',
)
# A question about existing jobs keeps only the fields that can filter them (the model's reading too).
QUERY_FILTER_FIELDS = frozenset(
    {"target", "gpu_type", "gpu_memory_gb", "mig_profile", "partition", "account", "qos", "namespace"}
)
_RESOURCE_FIELDS = ("gpus", "gpu_type", "mig_profile", "command", "image", "model", "gpu_memory_gb")
_SUPPORTING_FIELDS = ("time_limit_minutes", "nodes", "cpus", "memory_gb", "replicas", "port", "shared")
_SUBMIT_VERB_RE = lazy(
    r"\b(?:need|want|give|get|run|submit|schedule|queue|sbatch|allocate|reserve|book|request|deploy|serve"
    r"|launch|start|train|fine-?tune|i'?d\s+like|please|pls)\b",
    re.IGNORECASE,
)
_QUOTES_RE = lazy("[`'\"\u2018\u2019\u201c\u201d]")
_GPU_WORD_RE = lazy(r"\bgpus?\b", re.IGNORECASE)
_WORD_RE = lazy(r"[a-z0-9][a-z0-9'\-]*", re.IGNORECASE)


@dataclass(frozen=True)
class Understanding:
    """What the grammar made of a text, how sure it is, and the words it could not place."""

    intent: Intent
    confidence: float
    unread_words: tuple[str, ...] = ()


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
    "gpu_memory_gb": "GPU memory (GB)",
    "nodes": "nodes",
    "replicas": "replicas",
    "time_limit_minutes": "wall time (minutes)",
    "cpus": "CPUs",
    "memory_gb": "memory (GB)",
    "port": "port",
}


def _invalid(error: ValidationError) -> str:
    problems = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "request"
        words = _FIELD_WORDS.get(key, key)
        limits = problem.get("ctx") or {}
        if "le" in limits:
            problems.append(
                f"{words} is {problem.get('input')}, more than the {limits['le']} a request may ask"
            )
        elif "ge" in limits:
            problems.append(f"{words} is {problem.get('input')}, less than the minimum of {limits['ge']}")
        else:
            problems.append(f"{words} {problem.get('input')!r} is not usable: {problem['msg']}")
    return (
        "I understood the request, but it cannot be submitted as written: "
        + "; ".join(problems)
        + f". Change that and ask again, e.g. {EXAMPLES[0]}."
    )


def _unread_words(leftover: str) -> tuple[str, ...]:
    return tuple(w for w in _WORD_RE.findall(leftover) if w.lower() not in FILLER)


def _question(question: Question, details: Details) -> Understanding:
    filters = {k: v for k, v in details.fields.items() if k in QUERY_FILTER_FIELDS}
    try:
        request = JobRequest(**filters)
    except ValidationError:
        request = JobRequest()  # a filter that cannot be valid is dropped, not fatal to the question
    intent = Intent(kind=question.kind, request=request, job=question.job)
    return Understanding(intent, 0.95 if question.plainly_asked else 0.7)


def _submit(details: Details, command: str | None) -> Understanding:
    if details.problem is not None:
        return _unknown(details.problem)
    fields: dict[str, Any] = dict(details.fields)
    if command is not None:
        fields["command"] = command
    fields.setdefault("workload", "batch")
    try:
        request = JobRequest(**fields)
    except ValidationError as error:
        return _unknown(_invalid(error))
    unread = _unread_words(details.leftover)
    words = len(_WORD_RE.findall(details.leftover)) or 1
    confidence = max(0.3, 1.0 - len(unread) / words) if unread else 1.0
    return Understanding(Intent(kind=IntentKind.SUBMIT, request=request), round(confidence, 3), unread)


def understand_in_detail(text: str) -> Understanding:
    """The intent in `text`, the grammar's confidence in it (0 to 1), and the words it could not place."""
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
        return _question(question, details)
    if names_resources:
        return _submit(details, split.command)
    # "I need GPUs", "2 hours on a node please": a request whose details are missing is still a request.
    if (
        any(k in details.fields for k in _SUPPORTING_FIELDS) or _GPU_WORD_RE.search(split.remainder)
    ) and _SUBMIT_VERB_RE.search(split.remainder):
        return _submit(details, split.command)
    return _unknown(_not_understood(text))


def understand_with_confidence(text: str) -> tuple[Intent, float]:
    """The intent in `text` and the grammar's confidence in it; ≥ HIGH_CONFIDENCE needs no model."""
    understanding = understand_in_detail(text)
    return understanding.intent, understanding.confidence


def understand(text: str) -> Intent:
    """The intent in `text`. Never raises: what cannot be understood is `unknown` with a message."""
    return understand_in_detail(text).intent
