"""Free GPUs per node and per product, from ONE nodes LIST and ONE pods LIST.

Per node: allocatable GPU resources (`status.allocatable`) minus the requests of the pods bound
to it (`spec.nodeName`) that have not terminated (phase neither Succeeded nor Failed). A pod's
request is what the scheduler counts: the larger of the sum over its containers and the largest
init container; an extended resource given only as a limit counts as the request.

Three kinds of GPU resources are kept apart, because a pod asks for exactly one of them:
`nvidia.com/gpu` (whole GPUs; on a time-sliced node without renaming, replicas of one),
`nvidia.com/gpu.shared` (time-sliced replicas, renameByDefault) and `nvidia.com/mig-<profile>`
(MIG slices, mixed strategy).

Pools: one per GPU product and resource, across nodes: `NVIDIA-A100-SXM4-80GB` (whole GPUs),
`NVIDIA-A100-SXM4-80GB/mig-3g.40gb` (slices), `Tesla-T4/shared` (time-sliced replicas). A pool's
`gpu_type` is the short type people ask for (`a100`), so `concierge free a100` shows whole GPUs
and slices alike. Nodes of a product that are cordoned (`spec.unschedulable`) or not Ready are
left out of the totals and listed in `unavailable_nodes`; nodes with taints stay in (a pod that
tolerates them can use the GPUs) and the explanations name the taints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from backends.k8s.objects import Container, Node, Pod, Taint, count
from backends.k8s.products import family_of, mig_profile_of
from backends.types import GpuPool, PoolTally

GPU = "nvidia.com/gpu"
SHARED_GPU = "nvidia.com/gpu.shared"
MIG_PREFIX = "nvidia.com/mig-"
PRODUCT_LABEL = "nvidia.com/gpu.product"
MEMORY_LABEL = "nvidia.com/gpu.memory"
SHARING_LABEL = "nvidia.com/gpu.sharing-strategy"
MIG_STRATEGY_LABEL = "nvidia.com/mig.strategy"
SHARED_STRATEGIES = ("mps", "time-slicing")


def is_gpu_resource(name: str) -> bool:
    return name in (GPU, SHARED_GPU) or name.startswith(MIG_PREFIX)


def mig_resource(profile: str) -> str:
    return f"{MIG_PREFIX}{profile}"


def gpu_resources(values: Mapping[str, str]) -> dict[str, int]:
    return {name: count(value) for name, value in values.items() if is_gpu_resource(name)}


def _container_gpus(container: Container) -> dict[str, int] | None:
    """GPU resources a container asks for; a request overrides its limit, a lone limit is the request."""
    found: dict[str, int] | None = None
    resources = container.resources
    for source in (resources.limits, resources.requests):
        for name, value in source.items():
            if name.startswith("nvidia.com/") and is_gpu_resource(name):
                if found is None:
                    found = {}
                found[name] = count(value)
    return found


def pod_gpu_requests(
    pod_containers: Sequence[Container], init_containers: Sequence[Container]
) -> dict[str, int]:
    total: dict[str, int] = {}
    for container in pod_containers:
        for name, amount in (_container_gpus(container) or {}).items():
            total[name] = total.get(name, 0) + amount
    for container in init_containers:
        for name, amount in (_container_gpus(container) or {}).items():
            total[name] = max(total.get(name, 0), amount)
    return {name: amount for name, amount in total.items() if amount}


def node_unavailable_reason(node: Node) -> str | None:
    """Why a node takes no new pods ("cordoned", "not ready"), or None when it does."""
    if node.spec.unschedulable:
        return "cordoned"
    for condition in node.status.conditions:
        if condition.type == "Ready":
            return None if condition.status == "True" else "not ready"
    return "not ready"  # a node that never reported Ready


@dataclass(frozen=True, slots=True)
class NodeGpus:
    """One node's GPUs: what it advertises, what its pods hold, and whether it takes new pods."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, int]
    taints: tuple[Taint, ...] = ()
    unavailable: str | None = None
    requested: Mapping[str, int] = field(default_factory=dict)

    @property
    def product(self) -> str | None:
        return self.labels.get(PRODUCT_LABEL)

    @property
    def family(self) -> str | None:
        return family_of(self.product)

    @property
    def memory_mib(self) -> int | None:
        value = self.labels.get(MEMORY_LABEL, "")
        return int(value) if value.isdigit() else None

    @property
    def sharing(self) -> str:
        return self.labels.get(SHARING_LABEL, "none")

    @property
    def mig_strategy(self) -> str:
        return self.labels.get(MIG_STRATEGY_LABEL, "none")

    @property
    def mig_single_profile(self) -> str | None:
        if self.mig_strategy != "single" or not self.product:
            return None
        return mig_profile_of(self.product)

    def free(self, resource: str) -> int:
        return max(self.allocatable.get(resource, 0) - self.requested.get(resource, 0), 0)

    def whole_gpus(self) -> bool:
        """Whether `nvidia.com/gpu` here means whole, unshared GPUs."""
        return self.sharing not in SHARED_STRATEGIES and self.mig_single_profile is None


def node_gpus(node: Node, requested: Mapping[str, int] | None = None) -> NodeGpus:
    return NodeGpus(
        name=node.metadata.name,
        labels=node.metadata.labels,
        allocatable=gpu_resources(node.status.allocatable),
        taints=tuple(node.spec.taints),
        unavailable=node_unavailable_reason(node),
        requested=dict(requested or {}),
    )


@dataclass(frozen=True)
class ClusterCapacity:
    nodes: tuple[NodeGpus, ...]

    @property
    def gpu_nodes(self) -> tuple[NodeGpus, ...]:
        return tuple(node for node in self.nodes if node.allocatable)

    def available(self) -> Iterable[NodeGpus]:
        return (node for node in self.gpu_nodes if node.unavailable is None)

    def unavailable(self) -> list[NodeGpus]:
        return [node for node in self.gpu_nodes if node.unavailable is not None]

    def node(self, name: str) -> NodeGpus | None:
        for node in self.nodes:
            if node.name == name:
                return node
        return None


def requested_per_node(pods: Iterable[Pod]) -> dict[str, dict[str, int]]:
    per_node: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for pod in pods:
        if not pod.spec.node_name or pod.is_terminated:
            continue
        for name, amount in pod_gpu_requests(pod.spec.containers, pod.spec.init_containers).items():
            per_node[pod.spec.node_name][name] += amount
    return per_node


def capacity_from(nodes: Sequence[Node], pods: Iterable[Pod]) -> ClusterCapacity:
    requested = requested_per_node(pods)
    return ClusterCapacity(nodes=tuple(node_gpus(node, requested.get(node.metadata.name)) for node in nodes))


def pool_of(node: NodeGpus, resource: str) -> str:
    """The pool a node's resource belongs to (see the module docstring)."""
    product = node.product or GPU
    if resource.startswith(MIG_PREFIX):
        return f"{product}/{resource.removeprefix('nvidia.com/')}"
    if resource == SHARED_GPU:
        return f"{product}/shared"
    if node.sharing in SHARED_STRATEGIES and not product.upper().endswith("-SHARED"):
        return f"{product}/shared"
    return product


def pools_of(capacity: ClusterCapacity) -> list[GpuPool]:
    tallies: dict[str, PoolTally] = {}
    for node in capacity.gpu_nodes:
        for resource, amount in node.allocatable.items():
            if amount <= 0:
                continue
            tally = tallies.setdefault(pool_of(node, resource), PoolTally(gpu_type=node.family))
            tally.add(
                node.name, amount, node.requested.get(resource, 0), unavailable=node.unavailable is not None
            )
    return [tally.pool("k8s", name) for name, tally in sorted(tallies.items())]
