"""The one question to ask when a request lacks what it needs, and reading the answer to it.

Only one question at a time, the most important first: without something to run there is no job
at all; then the fields the site's policy requires (the judge would refuse the request without
them, so asking is kinder than a refusal); then, for a batch job that names no GPU at all, how
many GPUs (Slurm would otherwise run it with none, which nobody asking a GPU concierge wants).
A field the site's defaults fill in (the footprint's wall time) is never asked for; whether the
GPUs are stated is the footprint's own rule (`gpus_per_unit`), so asking and judging agree.

An answer is read like any message; a bare number ("2") also answers a question about a count.
"""

from __future__ import annotations

import re

from backends.footprint import GpusNotStated, gpus_per_unit
from backends.types import Identity, JobRequest
from bot.understanding.numbers import read_count
from policies import PolicySettings
from policies.judge import FIELD_HINTS

SOMETHING_TO_RUN = ("command", "image", "model")
_ANSWERED_BY = {
    "command": SOMETHING_TO_RUN,
    "model": SOMETHING_TO_RUN,
    "gpus": ("gpus", "gpu_type", "mig_profile", "shared", "cpu_only"),
}
# Required fields the site's defaults fill in (the footprint): never asked for.
FILLED_BY_FOOTPRINT = ("time_limit_minutes", "gpus")
_COUNTS = ("gpus", "nodes", "cpus", "replicas", "memory_gb", "gpu_memory_gb")
_QUESTIONS = {
    "command": "What should the job run? Give the command, e.g. `python3 train.py`.",
    "model": "Which model should it serve, e.g. `meta-llama/Llama-3.1-8B-Instruct`? Or name an image to run.",
    "gpus": "How many GPUs, and of which type? e.g. `2 A100` (or `CPU only` for a job without a GPU).",
}
_NOT_FOUND = {
    "command": "I found no command in that (put an unusual one in backticks: `my_tool --epochs 3`).",
    "model": "I found no model, image or command in that.",
    "gpus": "I found no GPU count or type in that.",
}
_EDGES = re.compile(r"^[\s.,!?]+|[\s.,!?]+$")


def missing_field(request: JobRequest, policy: PolicySettings, identity: Identity) -> str | None:
    """The one field to ask for next, or None when the request can be planned as it is."""
    service = request.workload == "service"
    if not any(getattr(request, name) for name in SOMETHING_TO_RUN):
        return "model" if service else "command"
    for name in policy.limits_for(identity).required_fields.for_workload(request.workload):
        if name not in FILLED_BY_FOOTPRINT and getattr(request, name) is None:
            return name
    try:
        gpus_per_unit(request)
    except GpusNotStated:
        return "gpus"
    return None


def question_for(field: str, request: JobRequest) -> str:
    if field in _QUESTIONS:
        return _QUESTIONS[field]
    label = field.replace("_", " ")
    hint = FIELD_HINTS.get(field, f"state its {label}")
    return f"This site needs the {label} of every {request.workload or 'batch'} request: {hint}."


def not_found(field: str) -> str:
    return _NOT_FOUND.get(field, f"I found no {field.replace('_', ' ')} in that.")


def is_answered(field: str, request: JobRequest) -> bool:
    said = (getattr(request, name) for name in _ANSWERED_BY.get(field, (field,)))
    return any(value is not None and value is not False for value in said)


def bare_count(field: str, text: str) -> int | None:
    """A count given alone ("2", "four") as the answer to a question about a count."""
    return read_count(_EDGES.sub("", text)) if field in _COUNTS else None
