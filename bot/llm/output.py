"""What the language model may say, and how that becomes our `Intent`.

The model answers in exactly this shape: vLLM constrains its decoding to `ModelReading`'s JSON
schema (`response_format` json_schema). The shape holds only what a person's words can carry: the
intent, the `JobRequest` fields, a job id for questions, and a clarifying question. It has no field
for who the person is, whom to run as, namespace permissions or approval: those come from Slack's
verified identity and the policies, and a model that could fill them in could be talked into it.

The schema carries types and choices, not limits: limits (GPUs ≤ 1024, the GPU type pattern...)
are checked afterwards by the same `JobRequest` validation every other door goes through, so the
model can never produce a request the grammar or the Slack form could not.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backends.errors import RequestInvalid
from backends.types import GPU_TYPE_MAX_CHARS, NAME_MAX_CHARS, Intent, IntentKind, JobRequest
from bot.understanding.gpu_models import canonical_gpu_type
from bot.understanding.grammar import QUERY_FILTER_FIELDS

IntentName = Literal[
    "submit", "status", "queue", "why_pending", "capacity", "cancel", "digest", "help", "unknown"
]
DEFAULT_QUESTION = (
    "I could not tell what you need. Say how many GPUs of which type, for how long, and what to run, "
    'e.g. "2 A100s for 4 hours to run python3 train.py", or ask about a job ("why is 1234 pending?").'
)


# Strings carry a bound, sent in the schema as maxLength: vLLM's constrained decoding holds to it
# (a 135M model otherwise wrote one namespace until max_tokens, ~20 s on CPU). A value cut there
# stands inside a longer word of the text, and grounding takes only whole tokens, so it is asked
# back. Not the command: grounding finds a command as any stretch of the text, so a cut one would
# pass; a runaway command ends at max_tokens, which is a fallback of its own.
LONG_VALUE_MAX_CHARS = 512  # an image reference or a model id
QUESTION_MAX_CHARS = 500


class ModelReading(BaseModel):
    """A person's message as the model read it. Every key is required (null when not said)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: IntentName = Field(description="what the person wants; unknown when unclear")
    target: Literal["slurm", "k8s"] | None = Field(
        description="slurm when Slurm/sbatch is named; k8s for kubernetes/namespace/pod or a service"
    )
    workload: Literal["batch", "service"] | None = Field(
        description="service for deploy/serve/endpoint/replicas/port; batch for run/train/job"
    )
    gpus: int | None = Field(description="GPUs per node or per replica, only when the person said it")
    gpu_type: str | None = Field(
        max_length=GPU_TYPE_MAX_CHARS, description="lowercase family: a100 h100 h200 v100 t4 l4 l40s a10 ..."
    )
    gpu_memory_gb: int | None = Field(description="minimum memory per GPU in GB, when stated")
    mig_profile: str | None = Field(
        max_length=GPU_TYPE_MAX_CHARS, description="MIG slice such as 1g.10gb or 3g.40gb"
    )
    shared: bool = Field(description="true only when a shared or time-sliced GPU is asked for")
    cpu_only: bool = Field(description="true only when the person says CPU only / no GPU")
    nodes: int | None = Field(description="number of nodes, when stated")
    replicas: int | None = Field(description="replicas of a service, when stated")
    time_limit_minutes: int | None = Field(description="wall time in minutes: 4h is 240")
    cpus: int | None = Field(description="CPU cores per task or replica")
    memory_gb: int | None = Field(description="host memory per node or replica in GB")
    partition: str | None = Field(max_length=NAME_MAX_CHARS, description="Slurm partition, as written")
    account: str | None = Field(max_length=NAME_MAX_CHARS, description="Slurm account, as written")
    qos: str | None = Field(max_length=NAME_MAX_CHARS, description="Slurm QOS, as written")
    namespace: str | None = Field(max_length=NAME_MAX_CHARS, description="Kubernetes namespace, as written")
    name: str | None = Field(max_length=NAME_MAX_CHARS, description="job or workload name, as written")
    image: str | None = Field(
        max_length=LONG_VALUE_MAX_CHARS, description="container image reference, as written"
    )
    model: str | None = Field(max_length=LONG_VALUE_MAX_CHARS, description="model id to serve, as written")
    port: int | None = Field(description="service port")
    command: str | None = Field(description="the command to run exactly as written, without quotes")
    job: str | None = Field(
        max_length=NAME_MAX_CHARS, description="job id or name that status/why_pending/cancel is about"
    )
    question: str | None = Field(
        max_length=QUESTION_MAX_CHARS, description="when intent is unknown: one short question to ask back"
    )


# Built once: handing LangChain the class instead makes the openai client rebuild this schema on
# every call (about 5 ms of CPU, more than the rest of our routing). Same schema on the wire.
READING_SCHEMA: dict[str, Any] = ModelReading.model_json_schema()
_NOT_REQUEST_FIELDS = {"intent", "job", "question"}


class InvalidModelOutput(RequestInvalid):
    """The model's answer does not make a valid request (it is not shown; the grammar answers)."""


def intent_from_reading(reading: ModelReading) -> Intent:
    """Our `Intent` from the model's reading, through the same `JobRequest` validation as any door.

    Raises `InvalidModelOutput` (a `RequestInvalid`) when the values break a limit or a pattern."""
    kind = IntentKind(reading.intent)
    if kind == IntentKind.UNKNOWN:
        return Intent(kind=kind, message=(reading.question or "").strip() or DEFAULT_QUESTION)
    fields: dict[str, Any] = {
        key: value
        for key, value in reading.model_dump(exclude=_NOT_REQUEST_FIELDS).items()
        if value is not None and (kind == IntentKind.SUBMIT or key in QUERY_FILTER_FIELDS)
    }
    for flag in ("shared", "cpu_only"):
        if fields.get(flag) is False:
            del fields[flag]
    if isinstance(fields.get("gpu_type"), str):
        fields["gpu_type"] = canonical_gpu_type(fields["gpu_type"]) or fields["gpu_type"].strip().lower()
    if kind == IntentKind.SUBMIT:
        fields.setdefault("workload", "batch")  # as the grammar: a request that names no service
    try:
        request = JobRequest(**fields)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in e.errors())
        raise InvalidModelOutput(problems) from e
    job = reading.job.strip() if reading.job and reading.job.strip() else None
    return Intent(kind=kind, request=request, job=job if kind != IntentKind.SUBMIT else None)


def reading_from_intent(intent: Intent) -> ModelReading:
    """The model-shaped form of an intent: the grammar's hint, and the prompt's worked examples."""
    request = intent.request.model_dump()
    return ModelReading(
        intent=intent.kind.value,
        job=intent.job,
        question=intent.message if intent.kind == IntentKind.UNKNOWN else None,
        **request,
    )
