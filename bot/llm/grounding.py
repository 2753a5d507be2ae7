"""Grounding: every value the language model put in a request must be written in the person's words,
as the value of that field.

The model's answer is untrusted. Its schema already keeps out identity, approval and anything
that is not a `JobRequest` field; grounding keeps out values nobody asked for, and an order nobody
gave. A field passes when the person's own messages (never the model's words, nor the bot's) give
it that value in a phrase the grammar ties to that field, read by the grammar's own readers:

- counts (GPUs, nodes, CPUs, replicas, port) and sizes (GPU and host memory): a phrase one of
  `read_details`' readers reads for that field (`details.stated_values`): "4 hours" states a wall
  time and never a GPU count, "Tell the policy it is 2" states nothing; a GPU count may also be a
  total the grammar divides over nodes ("8 GPUs across 2 nodes" is 4 per node). A bare number
  ("make it 4") is tied to no field and is asked back;
- the wall time: a length the grammar's duration reader finds that is the job's own
  (`durations.stated_time_limits`): the first one, or one after a time label ("walltime 4h"),
  never a deadline ("results due in 30 hours"), a time past ("3 hours ago") or a repetition;
  "overnight" made into 12 h is not supported (the grammar reads no length into it, and the site's
  default is the better answer);
- the GPU type: a model name the grammar's reader finds;
- names (partition, account, qos, namespace, job name): the value written as a token near a word
  that labels it ("partition", "--account", "namespace"…), so "submit as root" supports no
  `account=root`; image and served model: the reference written as a token;
- the command: written verbatim in one message, modulo surrounding quotes and runs of whitespace;
- workload, target, shared, MIG slice, no GPU: the words the grammar decides them by (details.py);
- the intent: a cancel only where the message being answered orders that job cancelled with one of
  the grammar's cancel verbs (`queries.orders_cancel`: "kill job 1001", "1001 needs to be
  cancelled", or "cancel it" about a job named earlier), so a request for GPUs that mentions a job
  is never read as an order to cancel it. Submits are grounded by their fields (and always
  previewed); questions only read, and are grounded by the job they name.
Numbers, names and references are looked for only outside the command: in "run `sbatch --gres=gpu:8
job.sh`" the 8 is the command's business, not a GPU count (the grammar reads text the same way).

When a cheap check fails, the grammar's own reading of each message is the last word: a value the
grammar reads from a message is supported, so grounding never rejects what the deterministic path
would have produced itself (tests/unit/test_llm_grounding.py checks this with hypothesis). The one
exception is a wall time the grammar takes from a deadline or a time past ("results due in 30
hours, 1 a100 for python x.py"): that is not the job's length, whoever reads it.
Fields the model left empty are fine: the site's defaults (`policies.apply_defaults`) fill them later,
and an empty count only makes the job smaller. One omission is not: a wall time the person wrote and
the model left out. The policy judges a request without one at the site's default length, which for a
batch job is also what runs, but a service runs until cancelled whatever its time: "4 A100 for 48 h,
it's a service" read without its 48 h would pass as 4 GPU-hours. So a submit reading that drops a
wall time the messages state for the job is refused like an invented one.

Fast by construction: each message's evidence is read once and cached (conversations repeat their
earlier messages on every turn), and the grammar's full reading runs only when a cheap check fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from backends.durations_text import plural
from backends.types import Intent, IntentKind, JobRequest
from bot.understanding.commands import split_command
from bot.understanding.details import (
    CPU_ONLY_RE,
    NAME_LABELS,
    asks_shared,
    may_state_a_time,
    names_kubernetes,
    names_service,
    names_slurm,
    read_details,
    stated_values,
)
from bot.understanding.durations import TimeLimits, stated_time_limits
from bot.understanding.gpu_models import find_gpu_models
from bot.understanding.queries import find_job_reference, orders_cancel

_I = re.IGNORECASE
_WHITESPACE_RE = re.compile(r"\s+")
_SMART_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_FENCE_RE = re.compile(r"^```[a-z0-9_+-]*\s*|\s*```$", _I)
_OUTER_QUOTES = ("`", '"', "'")

# The grammar's words that label each name, looked for next to the model's value (before it, or
# just after: "the X partition"); "deployment X" and "statefulset X" name a workload too.
_LABELS: dict[str, re.Pattern[str]] = {
    field: re.compile(words + (r"|\b(?:deployment|statefulset)\b" if field == "name" else ""), _I)
    for field, words in NAME_LABELS.items()
}
_LABEL_BEFORE_CHARS = 40
_LABEL_AFTER_CHARS = 24
_TOKEN_BEFORE = frozenset("./:@-_")
_TOKEN_AFTER = frozenset("/:@-_")


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A value the model gave that no message of the person supports, and why."""

    field: str
    value: str
    why: str

    def __str__(self) -> str:
        return f"{self.field}={self.value}: {self.why}"


@dataclass(frozen=True)
class _Evidence:
    """What one message says, read once: the words about the request, and what they state."""

    text: str
    words: str  # the message with the command blanked out, where every other value must be

    @cached_property
    def lowered(self) -> str:
        return self.words.lower()

    @cached_property
    def stated(self) -> dict[str, frozenset[Any]]:
        """Each count and size field, with every value a phrase of the message gives it."""
        return stated_values(self.words)

    def states(self, field: str, value: object) -> bool:
        return value in self.stated.get(field, ())

    @cached_property
    def time_limits(self) -> TimeLimits:
        return stated_time_limits(self.words)

    @cached_property
    def gpu_models(self) -> tuple[str, ...]:
        return tuple(m.gpu_type for m in find_gpu_models(self.words))

    @cached_property
    def folded_text(self) -> str:
        return _folded(self.text)

    @cached_property
    def grammar(self) -> dict[str, Any]:
        """The grammar's own reading of this message: its fields, with its command."""
        split = split_command(self.text)
        fields = dict(read_details(split.remainder).fields)
        if split.command is not None:
            fields["command"] = split.command
        fields.setdefault("workload", "batch")
        return fields

    def has_token(self, value: str, *, after_slash: bool = False) -> bool:
        return bool(_token_positions(self.lowered, value.lower(), after_slash=after_slash))

    def has_labelled(self, field: str, value: str) -> bool:
        label = _LABELS[field]
        for start, end in _token_positions(self.lowered, value.lower()):
            before = self.words[max(0, start - _LABEL_BEFORE_CHARS) : start]
            after = self.words[end : end + _LABEL_AFTER_CHARS]
            if label.search(before) or label.search(after):
                return True
        return False


def _folded(text: str) -> str:
    return _WHITESPACE_RE.sub(" ", text.translate(_SMART_QUOTES)).strip()


def _unquoted_command(command: str) -> str:
    """The command without the fence, backticks or quotes a model may have kept around it."""
    stripped = _FENCE_RE.sub("", command.strip())
    while len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in _OUTER_QUOTES:
        stripped = stripped[1:-1].strip()
    return stripped


def _token_positions(haystack: str, needle: str, *, after_slash: bool = False) -> list[tuple[int, int]]:
    """Where `needle` stands as a whole token: not inside a longer name, path or reference."""
    found: list[tuple[int, int]] = []
    if not needle:
        return found
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        before = haystack[start - 1] if start else " "
        after = haystack[end] if end < len(haystack) else " "
        after_next = haystack[end + 1] if end + 1 < len(haystack) else " "
        before_ok = not (before.isalnum() or before in _TOKEN_BEFORE) or (after_slash and before == "/")
        after_ok = not (after.isalnum() or after in _TOKEN_AFTER) and not (
            after == "." and after_next.isalnum()
        )
        if before_ok and after_ok:
            found.append((start, end))
        start = haystack.find(needle, start + 1)
    return found


def _blank(text: str, part: str | None) -> str:
    if not part:
        return text
    return text.replace(part, " " * len(part))


@lru_cache(maxsize=512)
def _evidence(text: str, model_command: str | None) -> _Evidence:
    # The grammar's command and the model's are both blanked: neither may lend the request values.
    words = _blank(split_command(text).remainder, model_command)
    return _Evidence(text, words)


class _Check:
    """One request against the messages; each `field` method says why a value is unsupported."""

    def __init__(
        self, request: JobRequest, texts: Sequence[str], agreed: JobRequest | None, submit: bool
    ) -> None:
        self.request = request
        self.submit = submit
        command = _unquoted_command(request.command) if request.command else None
        self.evidence = tuple(_evidence(text, command) for text in texts if text)
        self.agreed = agreed

    def any(self, test: Callable[[_Evidence], bool]) -> bool:
        return any(test(e) for e in self.evidence)

    def grammar_read(self, field: str, value: object) -> bool:
        if field == "time_limit_minutes":
            return False  # the grammar's time is weighed with its context in `time_limit_minutes`
        return self.any(lambda e: _same(e.grammar.get(field), value))

    def count(self, field: str, value: int) -> str | None:
        if self.any(lambda e: e.states(field, value)):
            return None
        return f"no message gives the {_FIELD_WORDS.get(field, field)} as {value}"

    def gpus(self, value: int) -> str | None:
        nodes = self.request.nodes or 1
        if self.any(lambda e: e.states("gpus", value) or e.states("gpus", value * nodes)):
            return None
        if value == 0 and self.any(lambda e: CPU_ONLY_RE.search(e.words) is not None):
            return None
        return f"no message asks for {value} {plural(value, 'GPU', 'GPUs')}"

    def time_limit_minutes(self, value: int) -> str | None:
        if self.any(lambda e: value in e.time_limits.stated or _jobs_time_read(e, value)):
            return None
        if self.any(lambda e: value in e.time_limits.not_the_jobs):
            return f"the messages give {value} minutes as a deadline, a time past or a wait, not a wall time"
        return f"no message states a wall time of {value} minutes"

    def gpu_type(self, value: str) -> str | None:
        if self.any(lambda e: value in e.gpu_models):
            return None
        return f"no message names a {value} GPU"

    def memory(self, field: str, value: int) -> str | None:
        if self.any(lambda e: e.states(field, value)):
            return None
        return f"no message gives the {_FIELD_WORDS[field]} as {value} GB"

    def labelled(self, field: str, value: str) -> str | None:
        if self.any(lambda e: e.has_labelled(field, value)):
            return None
        return f"no message names {value!r} as its {field.replace('_', ' ')}"

    def reference(self, field: str, value: str) -> str | None:
        if self.any(lambda e: e.has_token(value, after_slash=field == "model")):
            return None
        return f"no message names {value!r} outside the command"

    def command(self, value: str) -> str | None:
        wanted = _folded(_unquoted_command(value))
        if wanted and self.any(lambda e: wanted in e.folded_text):
            return None
        return "the command is not written in any message as the model gave it"

    def mig_profile(self, value: str) -> str | None:
        if self.any(
            lambda e: bool(_token_positions(e.lowered, value) or _token_positions(e.lowered, value[:-1]))
        ):
            return None
        return f"no message names the MIG slice {value}"

    def workload(self, value: str) -> str | None:
        request = self.request
        if value == "batch" or request.model or request.port or request.replicas:
            return None  # batch is what any submit is; a model, port or replicas make a service
        if self.any(lambda e: names_service(e.words)):
            return None
        return "no message asks to deploy or serve anything"

    def target(self, value: str) -> str | None:
        request = self.request
        if value == "slurm":
            if request.partition or request.account or request.qos:
                return None
            if self.any(lambda e: names_slurm(e.words)):
                return None
            return "no message names Slurm"
        if request.workload == "service" or request.namespace:
            return None
        if self.any(lambda e: names_kubernetes(e.words)):
            return None
        return "no message names Kubernetes or a service"

    def shared(self, value: bool) -> str | None:
        if self.any(lambda e: asks_shared(e.words)):
            return None
        return "no message asks for a shared GPU"

    def cpu_only(self, value: bool) -> str | None:
        # The grammar's own words for it: a model must not turn a GPU request into a CPU job.
        if self.any(lambda e: CPU_ONLY_RE.search(e.lowered) is not None):
            return None
        return "no message says the job needs no GPU"

    def why_unsupported(self, field: str, value: Any) -> str | None:
        match field:
            case "gpus":
                return self.gpus(value)
            case "nodes" | "cpus" | "replicas" | "port":
                return self.count(field, value)
            case "time_limit_minutes":
                return self.time_limit_minutes(value)
            case "gpu_type":
                return self.gpu_type(value)
            case "gpu_memory_gb" | "memory_gb":
                return self.memory(field, value)
            case "partition" | "account" | "qos" | "namespace" | "name":
                return self.labelled(field, value)
            case "image" | "model":
                return self.reference(field, value)
            case "command":
                return self.command(value)
            case "mig_profile":
                return self.mig_profile(value)
            case "workload":
                return self.workload(value)
            case "target":
                return self.target(value)
            case "shared":
                return self.shared(value)
            case "cpu_only":
                return self.cpu_only(value)
        return f"{field} is not a field the model may fill in"

    def dropped_time(self) -> str | None:
        """Why leaving the wall time out is refused, when a message (or the draft) states one."""
        if not self.submit or self.request.time_limit_minutes is not None:
            return None
        if self.agreed is not None and self.agreed.time_limit_minutes is not None:
            return f"the draft asks for {self.agreed.time_limit_minutes} minutes and the model left it out"
        for evidence in self.evidence:
            # The cheap test first: most messages state no time and need no grammar at all.
            read = evidence.grammar.get("time_limit_minutes") if may_state_a_time(evidence.words) else None
            if read is None:
                continue
            stated = evidence.time_limits.stated
            minutes = read if _jobs_time_read(evidence, read) else min(stated, default=None)
            if minutes is not None:
                return f"a message asks for {minutes} minutes and the model left the wall time out"
        return None

    def unsupported(self) -> list[Unsupported]:
        found: list[Unsupported] = []
        for field, value in _stated(self.request):
            if self.agreed is not None and _same(getattr(self.agreed, field), value):
                continue
            why = self.why_unsupported(field, value)
            if why is not None and not self.grammar_read(field, value):
                found.append(Unsupported(field, _shown(value), why))
        dropped = self.dropped_time()
        if dropped is not None:
            found.append(Unsupported("time_limit_minutes", "none", dropped))
        return found


_FIELD_WORDS = {
    "nodes": "node count",
    "cpus": "CPU count",
    "replicas": "replica count",
    "port": "port",
    "gpu_memory_gb": "GPU memory",
    "memory_gb": "host memory",
}


def _jobs_time_read(evidence: _Evidence, value: int) -> bool:
    """The grammar read this time from the message, and it is not only a deadline or a time past
    there (the grammar reads the first length it finds, whatever the words around it)."""
    limits = evidence.time_limits
    if value in limits.not_the_jobs and value not in limits.the_jobs:
        return False
    return _same(evidence.grammar.get("time_limit_minutes"), value)


def _same(read: object, value: object) -> bool:
    if isinstance(read, str) and isinstance(value, str):
        return read.strip().lower() == value.strip().lower()
    return read is not None and read == value


def _shown(value: object) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _stated(request: JobRequest) -> Iterable[tuple[str, Any]]:
    """The fields the model filled in: anything not at its default (None, or False for `shared`)."""
    for field, info in JobRequest.model_fields.items():
        value = getattr(request, field)
        if value is not None and value != info.default:
            yield field, value


def check_grounding(
    request: JobRequest,
    texts: Sequence[str],
    *,
    agreed: JobRequest | None = None,
    submit: bool = True,
) -> list[Unsupported]:
    """The values in `request` that the person's messages `texts` do not support (empty: all do).

    `texts` are the person's own messages so far, never the model's or the bot's. `agreed` is the
    draft the person already saw and kept (a follow-up "make it 4 GPUs" changes it): its values were
    checked when they were first read, or came from a form, and are not asked for again. `submit`:
    the request is to be run (not a question's filters), so a wall time left out is checked too.
    """
    return _Check(request, texts, agreed, submit).unsupported()


def check_intent_grounding(
    intent: Intent, texts: Sequence[str], *, agreed: JobRequest | None = None
) -> list[Unsupported]:
    """`check_grounding` for a whole intent: the order (a cancel must be given in so many words),
    its request, and the job a question is about."""
    found: list[Unsupported] = []
    job = intent.job
    if intent.kind == IntentKind.CANCEL and not _cancel_ordered(texts, job):
        said = f"job {job}" if job else "a job"
        found.append(Unsupported("intent", "cancel", f"no message asks to cancel {said}"))
    submit = intent.kind == IntentKind.SUBMIT
    found += check_grounding(intent.request, texts, agreed=agreed, submit=submit)
    if job is not None and not any(_token_positions(text.lower(), job.lower()) for text in texts):
        found.append(Unsupported("job", _shown(job), f"no message names the job {job!r}"))
    return found


def _cancel_ordered(texts: Sequence[str], job: str | None) -> bool:
    """The message being answered (the last) orders this job cancelled, or says "cancel it" (naming
    no job) about the job an earlier message named (the job itself is checked to be named, as for
    any question). An order given in an earlier message was answered then: it orders nothing now."""
    last = texts[-1] if texts else ""
    if job is not None and orders_cancel(last, job):
        return True
    return orders_cancel(last, None) and find_job_reference(last) is None
