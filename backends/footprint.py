"""What a job will hold, derived once from the request and the site's defaults.

The footprint is the one truth about a job's size: the sbatch header and the Kubernetes manifests
are rendered from it, the policy judges it, the store records its total and the preview states it.
No other code computes a GPU count, so what a person is shown, what is judged and what runs
cannot disagree (a GPU type named without a count used to be allocated 1 per node but judged 0).

Rules, each decided here and nowhere else:
- A GPU type, a memory floor, a model to serve, a shared GPU or a MIG slice named without a count
  means 1 per node (Slurm, Kubernetes batch) or per replica (Kubernetes services).
- `gpus` is per node/replica (shared/contracts/parse.md), so the total is `gpus × nodes` on Slurm
  and for Kubernetes batch jobs (an Indexed Job of one pod per node), `gpus × replicas` for
  Kubernetes services. Slurm has no replicas; a Kubernetes service ignores nodes (with a warning
  from the manifests).
- No GPU stated is not a CPU job: it is a question (`GpusNotStated`), unless the person said
  "CPU only" / "no GPU" (`cpu_only`); "0 GPUs" alone is asked back too.
- Every Slurm job gets a wall time: the stated one, else the site's default, or for a service
  the site's longest (Slurm ends a job at its limit, so a service is given all it may have).
  A Kubernetes batch Job gets the default as its deadline; a Kubernetes service has none and is
  open-ended (the policy judges it at the longest allowed time).
"""

from __future__ import annotations

from typing import Literal

from backends.durations_text import duration
from backends.errors import RequestInvalid
from backends.types import Footprint, GpuKind, JobRequest, Target, TimeSource


class GpusNotStated(RequestInvalid):
    """The request names no GPU (or 0 GPUs) and does not say it wants none: ask how many."""


GPU_QUESTION = "how many GPUs, and of which type? Say e.g. '2 A100' (or 'CPU only' for a job without a GPU)"


def describe_footprint(footprint: Footprint) -> str:
    """One line: `2 × A100 on each of 2 nodes (4 GPUs) for 4 h`."""
    if footprint.gpu_kind is GpuKind.NONE:
        what = "no GPU (CPU only)"
    else:
        request = footprint.request
        kind = request.gpu_type.upper() if request.gpu_type else "GPU"
        if footprint.gpu_kind is GpuKind.MIG:
            kind = f"MIG {request.mig_profile} slice"
        elif footprint.gpu_kind is GpuKind.SHARED:
            kind = f"shared {kind}"
        what = f"{footprint.gpus_per_unit} × {kind}"
        if footprint.units != 1:
            what += f" on each of {footprint.units} {footprint.unit}s ({_gpus(footprint.total_gpus)})"
    return f"{what} {describe_time(footprint)}"


def describe_time(footprint: Footprint) -> str:
    if footprint.time_limit_minutes is None:
        return "no time limit (a service runs until it is cancelled)"
    said = {
        TimeSource.STATED: "",
        TimeSource.SITE_DEFAULT: " (site default)",
        TimeSource.SITE_LONGEST: " (the site's longest, for a service)",
        TimeSource.OPEN_ENDED: "",
    }[footprint.time_source]
    return f"for {duration(minutes=footprint.time_limit_minutes)}{said}"


def is_service(request: JobRequest) -> bool:
    """A service when said so, or, with no workload stated, when it serves a model or a port."""
    if request.workload is not None:
        return request.workload == "service"
    return bool(request.model or request.port)


def derive_footprint(
    request: JobRequest,
    backend: Target,
    *,
    default_minutes: int,
    longest_minutes: int | None,
) -> Footprint:
    service = is_service(request)
    kind, per_unit = gpus_per_unit(request)
    units, unit = _units(request, backend, service)
    minutes, source = _time(request, backend, service, default_minutes, longest_minutes)
    return Footprint(
        request=request,
        backend=backend,
        service=service,
        gpus_per_unit=per_unit,
        units=units,
        unit=unit,
        gpu_kind=kind,
        time_limit_minutes=minutes,
        time_source=source,
    )


def gpus_per_unit(request: JobRequest) -> tuple[GpuKind, int]:
    """The kind of GPU and how many per node/replica; GpusNotStated when the request does not say."""
    names_gpu = bool(request.gpu_type or request.mig_profile or request.shared or request.gpu_memory_gb)
    if request.cpu_only:
        if names_gpu or request.gpus:
            raise RequestInvalid(
                "the request says both 'CPU only' and a GPU: say how many GPUs (e.g. '1 A100'), or "
                "leave the GPU out for a CPU job"
            )
        return GpuKind.NONE, 0
    if request.gpus == 0:
        raise GpusNotStated(f"0 GPUs asked: {GPU_QUESTION}")
    count = request.gpus if request.gpus is not None else 1
    if request.mig_profile:
        return GpuKind.MIG, count
    if request.shared:
        return GpuKind.SHARED, count
    if request.gpus is not None or names_gpu or request.model:
        return GpuKind.WHOLE, count
    raise GpusNotStated(f"no GPU was understood in the request: {GPU_QUESTION}")


def _units(request: JobRequest, backend: Target, service: bool) -> tuple[int, Literal["node", "replica"]]:
    if backend == "k8s" and service:
        return (request.replicas if request.replicas is not None else 1), "replica"
    if backend == "slurm" and request.replicas not in (None, 1):
        raise RequestInvalid(
            f"Slurm runs one job, not {request.replicas} replicas: ask for nodes ('on 2 nodes'), or "
            "send a service with replicas to Kubernetes ('in namespace …')"
        )
    return (request.nodes or 1), "node"


def _time(
    request: JobRequest,
    backend: Target,
    service: bool,
    default_minutes: int,
    longest_minutes: int | None,
) -> tuple[int | None, TimeSource]:
    if backend == "k8s" and service:
        return None, TimeSource.OPEN_ENDED  # a Deployment is not stopped after any time
    if request.time_limit_minutes is not None:
        return request.time_limit_minutes, TimeSource.STATED
    if backend == "slurm" and service and longest_minutes is not None:
        return longest_minutes, TimeSource.SITE_LONGEST
    return default_minutes, TimeSource.SITE_DEFAULT


def _gpus(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"
