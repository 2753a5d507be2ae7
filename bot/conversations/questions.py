"""The one question to ask when a request lacks what it needs, and reading the answer to it.

Only one question at a time, the most important first: without something to run there is no job
at all; then the fields the site's policy requires (the judge would refuse the request without
them, so asking is kinder than a refusal); then, for a batch job that names no GPU at all, how
many GPUs (Slurm would otherwise run it with none, which nobody asking a GPU concierge wants).
Missing fields are judged on the request with the site's defaults applied, exactly as the judge
sees it, so a field the site fills in itself is never asked for.

An answer is read like any message; a bare number ("2") also answers a question about a count.
"""

from __future__ import annotations

import re

from backends.types import Identity, JobRequest
from bot.understanding.numbers import read_count
from policies import PolicySettings, apply_defaults
from policies.judge import FIELD_HINTS

SOMETHING_TO_RUN = ("command", "image", "model")
_ANSWERED_BY = {
    "command": SOMETHING_TO_RUN,
    "model": SOMETHING_TO_RUN,
    "gpus": ("gpus", "gpu_type", "mig_profile", "shared"),
}
_COUNTS = ("gpus", "nodes", "cpus", "replicas", "memory_gb", "gpu_memory_gb")
_QUESTIONS = {
    "command": "What should the job run? Give the command, e.g. `python train.py`.",
    "model": "Which model should it serve, e.g. `meta-llama/Llama-3.1-8B-Instruct`? Or name an image to run.",
    "gpus": "How many GPUs, and of which type? e.g. `2 A100`.",
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
    judged = apply_defaults(request, policy, identity)
    for name in policy.limits_for(identity).required_fields.for_workload(request.workload):
        if getattr(judged, name) is None:
            return name
    says_no_gpu = request.gpus is None and not (request.gpu_type or request.mig_profile or request.shared)
    if not service and says_no_gpu:
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
