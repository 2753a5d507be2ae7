"""Each GPU sample paired with the job holding that GPU, if any.

The holders come from the schedulers, which know allocations, not from the GPUs, which only
know processes: Slurm's GRES indices per node (backends/slurm/gpu_allocation.py) and
dcgm-exporter's pod labels (backends/k8s/gpu_holders.py). This module only joins them.

- Kubernetes first: a sample that names a pod is held by that pod's holder.
- Slurm by (host, GPU index). Host names differ between sources (NVML's `socket.gethostname()`
  may be `gpu01.cluster.example`, Slurm's node `gpu01`), so an exact match is tried first, then
  the short names (up to the first dot) on both sides.
- MIG devices ("0/7") are not matched to Slurm: Slurm's MIG GRES indices do not name a GPU
  instance. The whole-board sample ("0") still is.
- NVML pid attribution (`scontrol listpids` on each node) is left out: it needs a command on
  every node, where GRES indices need one call for the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from backends.gpu.samples import GpuHolder, GpuSample


def _short(host: str) -> str:
    return host.split(".", 1)[0]


def attribute(
    samples: Iterable[GpuSample],
    slurm_allocations: Mapping[tuple[str, str], GpuHolder],
    k8s_holders: Mapping[tuple[str, str], GpuHolder],
) -> list[tuple[GpuSample, GpuHolder | None]]:
    """(sample, holder or None) for every sample, in order.

    `slurm_allocations` is keyed by (node, GPU index), `k8s_holders` by (namespace, pod)."""
    by_short_host = {(_short(host), gpu): holder for (host, gpu), holder in slurm_allocations.items()}
    paired: list[tuple[GpuSample, GpuHolder | None]] = []
    for sample in samples:
        holder: GpuHolder | None = None
        if sample.pod and sample.namespace:
            holder = k8s_holders.get((sample.namespace, sample.pod))
        if holder is None and "/" not in sample.gpu:
            holder = slurm_allocations.get((sample.host, sample.gpu)) or by_short_host.get(
                (_short(sample.host), sample.gpu)
            )
        paired.append((sample, holder))
    return paired
