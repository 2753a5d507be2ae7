"""What would start sooner than a waiting pod, computed from the nodes' free GPUs (capacity.py).

All from one capacity snapshot, never a query per node. A node counts only when the pod could
land there apart from GPUs: Ready, not cordoned, every NoSchedule/NoExecute taint tolerated, and
its labels meeting the pod's node affinity (except the label a suggestion changes: the product for
"another GPU type", the sharing and MIG labels for "a shared GPU" or "a MIG slice"). Suggestions:
- fewer GPUs of the same kind, when some node has some but not enough free;
- another GPU type with enough free on one node (the memory floor still applies);
- a MIG slice or a shared (time-sliced) GPU, when the cluster offers them and some are free;
- a whole GPU, for a slice or shared GPU that does not fit.
Only GPUs are weighed; CPU and memory can still keep a suggestion from starting, which is why
each says "free now" and not "will start".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from backends.durations_text import plural
from backends.k8s.asks import PodAsk
from backends.k8s.capacity import (
    GPU,
    MIG_PREFIX,
    MIG_STRATEGY_LABEL,
    PRODUCT_LABEL,
    SHARED_GPU,
    SHARING_LABEL,
    ClusterCapacity,
    NodeGpus,
)

MAX_ALTERNATIVES = 5
MAX_NAMED_NODES = 3
_OTHER_KIND = frozenset({PRODUCT_LABEL, SHARING_LABEL, MIG_STRATEGY_LABEL})


def named_nodes(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_NAMED_NODES])
    more = len(names) - MAX_NAMED_NODES
    return f"{shown} and {more} more" if more > 0 else shown


def _on_nodes(nodes: Sequence[NodeGpus]) -> str:
    names = [n.name for n in nodes]
    return f"node {names[0]}" if len(names) == 1 else f"nodes {named_nodes(names)}"


def usable_nodes(ask: PodAsk, capacity: ClusterCapacity) -> list[NodeGpus]:
    return [node for node in capacity.gpu_nodes if ask.could_use(node)]


def fits_now(ask: PodAsk, capacity: ClusterCapacity) -> list[NodeGpus]:
    if ask.resource is None:
        return []
    return [n for n in usable_nodes(ask, capacity) if n.free(ask.resource) >= ask.count]


def _fewer(ask: PodAsk, capacity: ClusterCapacity) -> list[str]:
    if ask.resource is None or ask.count <= 1:
        return []
    usable = usable_nodes(ask, capacity)
    most = max((n.free(ask.resource) for n in usable), default=0)
    if not 0 < most < ask.count:
        return []
    best = sorted((n for n in usable if n.free(ask.resource) == most), key=lambda n: n.name)
    have = plural(len(best), "has", "have")
    count = f"{len(best)} {plural(len(best), 'node', 'nodes')}"
    return [
        f"{count} {have} {ask.describe(most)} free now ({_on_nodes(best)}): "
        f"ask for {most} instead of {ask.count}"
    ]


def _other_types(ask: PodAsk, capacity: ClusterCapacity) -> list[str]:
    if ask.resource != GPU or not ask.products:
        return []
    by_product: dict[str, list[NodeGpus]] = defaultdict(list)
    for node in capacity.gpu_nodes:
        if node.product in ask.products or not node.whole_gpus() or node.free(GPU) < ask.count:
            continue
        if ask.could_use(node, ignore=frozenset({PRODUCT_LABEL})):
            by_product[node.product or GPU].append(node)
    suggestions = []
    for product, nodes in sorted(by_product.items(), key=lambda item: -max(n.free(GPU) for n in item[1])):
        nodes.sort(key=lambda n: (-n.free(GPU), n.name))
        kind = nodes[0].family or product
        if len(nodes) == 1:
            where = f"{nodes[0].free(GPU)} free on node {nodes[0].name}"
        else:
            where = f"{ask.count} or more free on each of {_on_nodes(nodes)}"
        suggestions.append(f"{kind} ({product}): {where} — ask for {kind} instead")
    return suggestions


def _free_of(resource_prefix: str, nodes: Sequence[NodeGpus]) -> dict[str, tuple[int, list[str]]]:
    """Free units per resource (matching a prefix) and the nodes holding them."""
    found: dict[str, tuple[int, list[str]]] = {}
    for node in nodes:
        for resource in node.allocatable:
            if resource.startswith(resource_prefix) and node.free(resource):
                total, names = found.get(resource, (0, []))
                found[resource] = (total + node.free(resource), [*names, node.name])
    return found


def _slices(ask: PodAsk, capacity: ClusterCapacity) -> list[str]:
    if ask.resource is None or ask.count != 1:
        return []
    candidates = [n for n in capacity.gpu_nodes if ask.could_use(n, ignore=_OTHER_KIND)]
    suggestions = []
    for resource, (free, names) in sorted(_free_of(MIG_PREFIX, candidates).items()):
        if resource == ask.resource:
            continue
        profile = resource.removeprefix(MIG_PREFIX)
        memory = profile.split(".", 1)[-1].upper().replace("GB", " GB")
        suggestions.append(
            f"{free} MIG {profile} {plural(free, 'slice is', 'slices are')} free now "
            f"({_on_nodes_names(names)}): ask for a MIG slice {profile} if {memory} of GPU memory is enough"
        )
    for node in candidates:
        single = node.mig_single_profile
        if single and ask.resource == GPU and node.free(GPU) and node.product not in ask.products:
            free = node.free(GPU)
            suggestions.append(
                f"{free} MIG {single} {plural(free, 'slice is', 'slices are')} free now on node "
                f"{node.name}: ask for a MIG slice {single}"
            )
    return suggestions


def _on_nodes_names(names: Sequence[str]) -> str:
    return f"node {names[0]}" if len(names) == 1 else f"nodes {named_nodes(names)}"


def _shared(ask: PodAsk, capacity: ClusterCapacity) -> list[str]:
    if ask.resource != GPU:
        return []
    candidates = [n for n in capacity.gpu_nodes if ask.could_use(n, ignore=_OTHER_KIND)]
    renamed = _free_of(SHARED_GPU, candidates).get(SHARED_GPU)
    sliced = [n for n in candidates if not n.whole_gpus() and n.mig_single_profile is None and n.free(GPU)]
    free = (renamed[0] if renamed else 0) + sum(n.free(GPU) for n in sliced)
    if not free:
        return []
    names = (renamed[1] if renamed else []) + [n.name for n in sliced]
    return [
        f"the cluster time-slices GPUs: {free} shared {plural(free, 'GPU is', 'GPUs are')} free now "
        f"({_on_nodes_names(names)}): ask for a shared GPU if the work fits on part of one"
    ]


def _whole_instead(ask: PodAsk, capacity: ClusterCapacity) -> list[str]:
    if ask.resource is None or ask.resource == GPU:
        return []
    candidates = [
        n
        for n in capacity.gpu_nodes
        if n.whole_gpus() and n.free(GPU) >= ask.count and ask.could_use(n, ignore=_OTHER_KIND)
    ]
    if not candidates:
        return []
    candidates.sort(key=lambda n: (-n.free(GPU), n.name))
    kinds = sorted({n.family or n.product or "GPU" for n in candidates})
    return [
        f"whole GPUs are free now ({', '.join(kinds)} on {_on_nodes(candidates)}): ask for "
        f"{ask.count} whole {plural(ask.count, 'GPU', 'GPUs')} instead"
    ]


def gpu_alternatives(ask: PodAsk, capacity: ClusterCapacity) -> tuple[str, ...]:
    suggestions = [
        *_fewer(ask, capacity),
        *_other_types(ask, capacity),
        *_slices(ask, capacity),
        *_shared(ask, capacity),
        *_whole_instead(ask, capacity),
    ]
    return dedupe(suggestions)


def dedupe(suggestions: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(suggestions))[:MAX_ALTERNATIVES]


def describe_node_count(nodes: int | None, total: int | None) -> str:
    if nodes is None:
        return "every node"
    if total:
        return f"{nodes} of {total} {plural(total, 'node', 'nodes')}"
    return f"{nodes} {plural(nodes, 'node', 'nodes')}"
