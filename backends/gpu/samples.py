"""One reading of one GPU (or MIG device), whatever source it came from.

Every measurement may be missing (None): NVML answers NotSupported for some fields on some GPUs
(utilisation on MIG-enabled GPUs, power on some boards), and dcgm-exporter omits metrics it was
not configured to collect. A missing value is recorded as missing, never as 0, so an unknown GPU
is never reported as idle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class GpuSample:
    at: datetime  # timezone-aware, UTC
    host: str
    gpu: str  # the GPU index on its host ("0"); a MIG device is "<gpu>/<GPU instance id>" ("0/7")
    source: str  # "nvml", "dcgm" or "prometheus"
    uuid: str | None = None
    model: str | None = None  # as the source names it ("NVIDIA H100 80GB HBM3")
    utilization_pct: float | None = None
    memory_used_mib: float | None = None
    memory_total_mib: float | None = None
    power_w: float | None = None
    temperature_c: float | None = None
    mig_profile: str | None = None  # "1g.10gb" for a MIG device
    # Who holds it, where the source knows: dcgm-exporter's Kubernetes mode, or NVML's processes.
    pod: str | None = None
    namespace: str | None = None
    container: str | None = None
    pod_owner: str | None = None  # the person the pod's own labels name (dcgm.OWNER_LABELS), if any
    pids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class GpuHolder:
    """The job a GPU is allocated to, found by attribution (Slurm GRES indices or Kubernetes labels)."""

    backend: str  # "slurm" or "k8s"
    job_id: str
    owner: str  # the cluster user (Unix user or Kubernetes user) the job runs as
