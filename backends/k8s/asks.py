"""What a pod asks of a node, read back from its spec: GPUs, node affinity, tolerations.

Read from the pod, not from our request, so explanations hold for the pod as it is on the cluster
(a template edited by hand is explained as edited). Node affinity is evaluated as the scheduler
does for the required part: terms are ORed, a term's expressions ANDed; `nodeSelector` must match
as well. Only NoSchedule and NoExecute taints keep a pod off a node (PreferNoSchedule does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from backends.k8s.capacity import (
    GPU,
    MEMORY_LABEL,
    MIG_PREFIX,
    PRODUCT_LABEL,
    SHARED_GPU,
    NodeGpus,
    pod_gpu_requests,
)
from backends.k8s.objects import PodSpec, SelectorRequirement, SelectorTerm, Taint, Toleration
from backends.k8s.products import family_of

TIMES = "\N{MULTIPLICATION SIGN}"
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def _number(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def requirement_met(requirement: SelectorRequirement, labels: Mapping[str, str]) -> bool:
    value = labels.get(requirement.key)
    operator = requirement.operator
    if operator == "In":
        return value is not None and value in requirement.values
    if operator == "NotIn":
        return value is None or value not in requirement.values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        have = _number(value or "")
        bound = _number(requirement.values[0]) if requirement.values else None
        if have is None or bound is None:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def affinity_met(
    terms: Sequence[SelectorTerm], labels: Mapping[str, str], ignore: frozenset[str] = frozenset()
) -> bool:
    if not terms:
        return True
    return any(
        all(requirement_met(r, labels) for r in term.match_expressions if r.key not in ignore)
        for term in terms
    )


def tolerated(tolerations: Iterable[Toleration], taint: Taint) -> bool:
    for toleration in tolerations:
        if toleration.effect and toleration.effect != taint.effect:
            continue
        if not toleration.key:
            if toleration.operator == "Exists":
                return True
            continue
        if toleration.key != taint.key:
            continue
        if toleration.operator == "Exists" or toleration.value == taint.value:
            return True
    return False


def untolerated_taints(tolerations: Sequence[Toleration], taints: Iterable[Taint]) -> list[Taint]:
    return [t for t in taints if t.effect in BLOCKING_EFFECTS and not tolerated(tolerations, t)]


@dataclass(frozen=True)
class PodAsk:
    resource: str | None  # the GPU resource asked for (None: no GPU)
    count: int
    terms: tuple[SelectorTerm, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()

    @property
    def products(self) -> tuple[str, ...]:
        """The `nvidia.com/gpu.product` values the pod accepts (empty: any)."""
        values: list[str] = []
        for term in self.terms:
            for r in term.match_expressions:
                if r.key == PRODUCT_LABEL and r.operator == "In":
                    values.extend(r.values)
        values.extend(v for k, v in self.node_selector if k == PRODUCT_LABEL)
        return tuple(dict.fromkeys(values))

    @property
    def memory_floor_mib(self) -> int | None:
        for term in self.terms:
            for r in term.match_expressions:
                if r.key == MEMORY_LABEL and r.operator == "Gt" and r.values:
                    return _number(r.values[0])
        return None

    @property
    def gpu_type(self) -> str | None:
        if self.resource and self.resource.startswith(MIG_PREFIX):
            return "MIG " + self.resource.removeprefix(MIG_PREFIX)
        if self.resource == SHARED_GPU:
            return "shared GPU"
        families = {family_of(p) for p in self.products}
        return families.pop() if len(families) == 1 else None

    def describe(self, count: int | None = None) -> str:
        amount = self.count if count is None else count
        kind = self.gpu_type or "GPU"
        return f"{amount} {TIMES} {kind}"

    def labels_fit(self, labels: Mapping[str, str], ignore: frozenset[str] = frozenset()) -> bool:
        selector_ok = all(labels.get(k) == v for k, v in self.node_selector if k not in ignore)
        return selector_ok and affinity_met(self.terms, labels, ignore)

    def blocking_taints(self, node: NodeGpus) -> list[Taint]:
        return untolerated_taints(self.tolerations, node.taints)

    def could_use(self, node: NodeGpus, ignore: frozenset[str] = frozenset()) -> bool:
        """Whether the pod may land on the node at all (labels, taints, availability), free GPUs aside."""
        return (
            node.unavailable is None
            and self.labels_fit(node.labels, ignore)
            and not self.blocking_taints(node)
        )


def ask_of(spec: PodSpec) -> PodAsk:
    gpus = pod_gpu_requests(spec.containers, spec.init_containers)
    resource = None
    for name in (GPU, SHARED_GPU, *sorted(gpus)):
        if gpus.get(name):
            resource = name
            break
    return PodAsk(
        resource=resource,
        count=gpus.get(resource, 0) if resource else 0,
        terms=tuple(spec.required_terms()),
        node_selector=tuple(sorted(spec.node_selector.items())),
        tolerations=tuple(spec.tolerations),
    )
