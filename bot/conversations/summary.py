"""A request in one line: the summary a person confirms, and the sentence a revised request is kept as.

The summary is what "yes" answers ("2 × A100 for 4 h on partition gpu, running `python train.py`,
as alice"), so it is made from the plan's footprint (what the job holds, as judged and rendered)
and identity, not from the words the person typed.
"""

from __future__ import annotations

from backends.footprint import describe_footprint
from backends.types import JobRequest, Plan


def summary(plan: Plan) -> str:
    request = plan.request
    parts = [f"{describe_footprint(plan.footprint)} {_where(plan)}"]
    if request.model:
        parts.append(f"serving {request.model}")
    if request.command:
        command = " ".join(request.command.split())
        parts.append(f"running `{command if len(command) <= 120 else command[:119] + '…'}`")
    elif request.image:
        parts.append(f"image {request.image}")
    identity = plan.identity
    runs_as = (identity.unix_user if plan.backend == "slurm" else identity.k8s_user) or identity.requester
    parts.append(f"as {runs_as}")
    return ", ".join(parts)


def request_text(request: JobRequest) -> str:
    """One sentence the grammar reads back as `request`: what a revised request is stored as."""
    words: list[str] = []
    if request.command is not None:
        words.append(f"`{request.command}`")
    if request.gpus is not None:
        words.append(f"on {request.gpus} {request.gpu_type or 'gpus'}")
    elif request.gpu_type is not None:
        words.append(f"on {request.gpu_type}")
    if request.gpu_memory_gb is not None:
        words.append(f"with at least {request.gpu_memory_gb}GB")
    if request.mig_profile is not None:
        words.append(request.mig_profile)
    if request.shared:
        words.append("shared")
    if request.nodes is not None:
        words.append(f"on {request.nodes} nodes")
    if request.time_limit_minutes is not None:
        words.append(f"for {request.time_limit_minutes} minutes")
    if request.cpus is not None:
        words.append(f"{request.cpus} cpus")
    if request.memory_gb is not None:
        words.append(f"{request.memory_gb}GB ram")
    for label in ("partition", "account", "qos", "namespace", "image", "model", "port"):
        value = getattr(request, label)
        if value is not None:
            words.append(f"{label} {value}")
    if request.replicas is not None:
        words.append(f"{request.replicas} replicas")
    if request.name is not None:
        words.append(f"named {request.name}")
    if request.target is not None:
        words.append("on slurm" if request.target == "slurm" else "on kubernetes")
    return " ".join(words)


def _where(plan: Plan) -> str:
    if plan.backend == "slurm":
        partition = plan.request.partition
        return f"on partition {partition}" if partition else "on the default partition"
    namespace = plan.request.namespace or plan.identity.default_namespace
    return f"in namespace {namespace}" if namespace else "in the site's default namespace"
