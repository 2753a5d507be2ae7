"""Which GPU resource a pod asks for, and on which nodes, decided from what the cluster offers.

- A MIG slice: `nvidia.com/mig-<profile>` where nodes advertise it (mixed strategy), else
  `nvidia.com/gpu` on the single-strategy products named `…-MIG-<profile>`.
- A shared GPU: `nvidia.com/gpu.shared` where nodes advertise it (time-slicing with renaming),
  else `nvidia.com/gpu` on nodes whose `nvidia.com/gpu.sharing-strategy` is time-slicing or mps.
  One at a time: MPS refuses more, and two replicas of one GPU are not two GPUs.
- Whole GPUs: `nvidia.com/gpu`, kept off time-sliced and single-strategy MIG nodes (where that
  resource means a replica or a slice) when the cluster has such nodes.
A GPU type becomes node affinity on the `nvidia.com/gpu.product` values of the cluster that match
it (products.py); none matching is a RequestInvalid that lists what the cluster has. A memory
floor becomes `nvidia.com/gpu.memory Gt` in MiB at 90 % of the asked gigabytes, because cards are
sold in round gigabytes but report less (an "80 GB" H100 reports 81559 MiB, a "24 GB" A10 23028).

Facts from configuration (the cluster was unreadable) cannot confirm a GPU type; the placement
then says so in `unresolved`, and the backend refuses to submit such a plan until it can be
made again from the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backends.errors import RequestInvalid
from backends.k8s.capacity import (
    GPU,
    MEMORY_LABEL,
    MIG_STRATEGY_LABEL,
    PRODUCT_LABEL,
    SHARED_GPU,
    SHARED_STRATEGIES,
    SHARING_LABEL,
    mig_resource,
)
from backends.k8s.facts import ClusterFacts, ProductFacts
from backends.k8s.products import product_matches
from backends.types import Footprint, GpuKind, JobRequest

TIMES = "\N{MULTIPLICATION SIGN}"
MEMORY_SHARE = 0.9
GPU_TOLERATION: dict[str, str] = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}


@dataclass(frozen=True)
class GpuPlacement:
    resources: dict[str, int]
    expressions: tuple[dict[str, Any], ...] = ()
    described: str = "no GPU"
    gpu_type: str | None = None  # what to show as the GPU type (family, `mig-3g.40gb`, `shared`)
    warnings: tuple[str, ...] = ()
    unresolved: str | None = None

    @property
    def wants_gpus(self) -> bool:
        return bool(self.resources)


def memory_threshold_mib(gigabytes: int) -> int:
    return int(gigabytes * 1024 * MEMORY_SHARE)


def _gb(mib: int) -> str:
    return f"{round(mib / 1024)} GB"


def _expression(key: str, operator: str, values: Sequence[str]) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


def _product_expression(products: Sequence[str]) -> dict[str, Any]:
    return _expression(PRODUCT_LABEL, "In", sorted(set(products)))


def _typed(products: Sequence[str], gpu_type: str | None) -> list[str]:
    return [p for p in products if gpu_type is None or product_matches(gpu_type, p)]


def _offers(groups: Sequence[tuple[str, tuple[str, ...]]], profile: str) -> tuple[str, ...]:
    for key, products in groups:
        if key == profile:
            return products
    return ()


def _mig(request: JobRequest, facts: ClusterFacts, profile: str, amount: int) -> GpuPlacement:
    gpu_type = request.gpu_type
    mixed = _typed(_offers(facts.mig_mixed, profile), gpu_type)
    single = _typed(_offers(facts.mig_single, profile), gpu_type)
    described = f"{amount} {TIMES} MIG {profile}" + (f" ({gpu_type})" if gpu_type else "")
    warnings: list[str] = []
    if request.gpu_memory_gb:
        warnings.append(
            f"a MIG slice has the memory its profile names ({profile}); the asked "
            f"{request.gpu_memory_gb} GB per GPU is not used"
        )
    if mixed:
        expressions = (_product_expression(mixed),) if gpu_type else ()
        return GpuPlacement(
            {mig_resource(profile): amount},
            expressions,
            f"{described} (nvidia.com/mig-{profile})",
            f"mig-{profile}",
            tuple(warnings),
        )
    if single:
        return GpuPlacement(
            {GPU: amount},
            (_product_expression(single),),
            f"{described} (nvidia.com/gpu on {', '.join(single)})",
            f"mig-{profile}",
            tuple(warnings),
        )
    offered = ", ".join(facts.mig_profiles)
    where = f" for {gpu_type}" if gpu_type else ""
    has = f"it offers MIG slices {offered}" if offered else "no node has MIG enabled"
    raise RequestInvalid(
        f"the cluster offers no MIG slice {profile}{where}: {has}. Ask for one of those, or for a "
        f"whole GPU ({facts.describe_products()})"
    )


def _shared(request: JobRequest, facts: ClusterFacts, amount: int) -> GpuPlacement:
    if amount > 1:
        raise RequestInvalid(
            f"a shared (time-sliced) GPU is given one at a time, and {amount} replicas of one "
            f"GPU are not {amount} GPUs: ask for 1 shared GPU, or for {amount} whole GPUs"
        )
    gpu_type = request.gpu_type
    renamed = _typed(facts.shared_resource, gpu_type)
    sliced = _typed(facts.time_sliced, gpu_type)
    kind = f" {gpu_type}" if gpu_type else ""
    if renamed:
        typed = (_product_expression(renamed),) if gpu_type else ()
        return GpuPlacement({SHARED_GPU: 1}, typed, f"1 shared{kind} GPU ({SHARED_GPU})", "shared")
    if sliced:
        expressions = [_expression(SHARING_LABEL, "In", list(facts.sharing_strategies))]
        if gpu_type:
            expressions.append(_product_expression(sliced))
        return GpuPlacement({GPU: 1}, tuple(expressions), f"1 shared{kind} GPU (time-sliced {GPU})", "shared")
    where = f" {gpu_type}" if gpu_type else ""
    other = [f"a whole GPU ({facts.describe_products()})"]
    if facts.mig_profiles:
        other.append(f"a MIG slice ({', '.join(facts.mig_profiles)})")
    raise RequestInvalid(
        f"this cluster has no shared{where} GPUs: no node advertises {SHARED_GPU} or a GPU sharing "
        f"strategy (time-slicing, MPS). Ask for {' or '.join(other)}"
    )


def _candidates(request: JobRequest, facts: ClusterFacts) -> list[ProductFacts]:
    """Whole-GPU products that fit the type and memory asked."""
    candidates = list(facts.whole)
    if not candidates and facts.from_cluster:
        offered = []
        if facts.mig_profiles:
            offered.append(f"MIG slices ({', '.join(facts.mig_profiles)})")
        if facts.has_sharing:
            offered.append("shared (time-sliced) GPUs")
        instead = f"; it offers {' and '.join(offered)}: ask for one of those" if offered else ""
        raise RequestInvalid(f"no node of this cluster offers whole GPUs{instead or ' at all'}")
    if request.gpu_type:
        candidates = [p for p in candidates if product_matches(request.gpu_type, p.product)]
        if not candidates and facts.from_cluster:
            raise RequestInvalid(
                f"the cluster has no {request.gpu_type} GPUs; its GPU products are "
                f"{facts.describe_products()}. Ask for one of those types"
            )
    if request.gpu_memory_gb and facts.from_cluster:
        floor = memory_threshold_mib(request.gpu_memory_gb)
        fitting = [p for p in candidates if p.memory_mib is None or p.memory_mib > floor]
        if not fitting:
            sizes = ", ".join(
                f"{_gb(p.memory_mib)} ({p.product})" for p in candidates if p.memory_mib is not None
            )
            kind = f"{request.gpu_type} " if request.gpu_type else ""
            raise RequestInvalid(
                f"no {kind}GPU in the cluster has {request.gpu_memory_gb} GB: they have {sizes}. "
                "Ask for less memory per GPU, or spread the model over more GPUs"
            )
        candidates = fitting
    return candidates


def _whole(request: JobRequest, facts: ClusterFacts, amount: int) -> GpuPlacement:
    candidates = _candidates(request, facts)
    expressions: list[dict[str, Any]] = []
    warnings: list[str] = []
    unresolved = None
    gpu_type = request.gpu_type
    if gpu_type:
        if candidates:
            expressions.append(_product_expression([p.product for p in candidates]))
        else:
            unresolved = gpu_type
            warnings.append(
                f"the GPU type {gpu_type} could not be checked against the cluster's products "
                f"({facts.note or 'it was not read'}), so this plan cannot be submitted; ask again "
                "when the cluster answers"
            )
    if request.gpu_memory_gb:
        expressions.append(
            _expression(MEMORY_LABEL, "Gt", [str(memory_threshold_mib(request.gpu_memory_gb))])
        )
    if facts.sharing_strategies or facts.time_sliced:
        expressions.append(_expression(SHARING_LABEL, "NotIn", list(SHARED_STRATEGIES)))
    if facts.mig_single:
        expressions.append(_expression(MIG_STRATEGY_LABEL, "NotIn", ["single"]))
    most = max((p.max_per_node for p in candidates), default=0)
    if facts.from_cluster and candidates and amount > most:
        best = max(candidates, key=lambda p: p.max_per_node)
        raise RequestInvalid(
            f"no node has {amount} {gpu_type or 'GPU'}s: the most on one node is {most} "
            f"({best.product}). Ask for at most {most} per replica, and more replicas or nodes"
        )
    memory = f", > {request.gpu_memory_gb} GB each" if request.gpu_memory_gb else ""
    kind = gpu_type or "GPU"
    return GpuPlacement(
        {GPU: amount},
        tuple(expressions),
        f"{amount} {TIMES} {kind}{memory} ({GPU})",
        gpu_type,
        tuple(warnings),
        unresolved,
    )


def place_gpus(footprint: Footprint, facts: ClusterFacts) -> GpuPlacement:
    """The GPU resource and node affinity of each pod; the count is the footprint's per pod."""
    request, amount = footprint.request, footprint.gpus_per_unit
    if footprint.gpu_kind is GpuKind.NONE:
        return GpuPlacement({})
    if footprint.gpu_kind is GpuKind.MIG:
        return _mig(request, facts, request.mig_profile or "", amount)
    if footprint.gpu_kind is GpuKind.SHARED:
        return _shared(request, facts, amount)
    return _whole(request, facts, amount)
