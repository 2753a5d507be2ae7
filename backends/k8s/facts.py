"""What a cluster's GPU nodes advertise, read from ONE nodes LIST: the ground for every plan.

Plans ask only for what nodes actually offer: the GPU products (`nvidia.com/gpu.product`), their
memory, the MIG slices of the mixed strategy (`nvidia.com/mig-<profile>` resources) or the single
strategy (products named `…-MIG-<profile>`), and GPU sharing (`nvidia.com/gpu.shared` resources
when time-slicing renames, else nodes labelled `nvidia.com/gpu.sharing-strategy`). Cordoned and
NotReady nodes count here: they are part of the cluster and will take pods again; capacity is
where they are left out.

When the cluster cannot be read, facts come from configuration (`fallback_gpu_products`) and say
so (`from_cluster=False`, `note`); the plan carries a warning then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backends.k8s.capacity import GPU, MIG_PREFIX, SHARED_GPU, SHARED_STRATEGIES, NodeGpus
from backends.k8s.products import family_of, mig_profile_of


@dataclass(frozen=True)
class ProductFacts:
    product: str
    nodes: int
    max_per_node: int  # the most `nvidia.com/gpu` one node of this product advertises
    memory_mib: int | None = None

    @property
    def family(self) -> str | None:
        return family_of(self.product)

    def describe(self) -> str:
        family = self.family
        return f"{self.product} ({family})" if family and family != self.product.lower() else self.product


@dataclass(frozen=True)
class ClusterFacts:
    whole: tuple[ProductFacts, ...] = ()  # products with whole, unshared `nvidia.com/gpu`
    mig_mixed: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (profile, products offering it)
    mig_single: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (profile, products named …-MIG-profile)
    shared_resource: tuple[str, ...] = ()  # products whose nodes advertise nvidia.com/gpu.shared
    time_sliced: tuple[str, ...] = ()  # products on nodes with a sharing strategy, no renaming
    sharing_strategies: tuple[str, ...] = ()  # strategies present on some node (mps, time-slicing)
    from_cluster: bool = True
    note: str | None = None  # why the cluster was not read

    @property
    def mig_profiles(self) -> tuple[str, ...]:
        return tuple(sorted({profile for profile, _ in (*self.mig_mixed, *self.mig_single)}))

    @property
    def has_sharing(self) -> bool:
        return bool(self.shared_resource or self.time_sliced)

    def describe_products(self) -> str:
        if not self.whole:
            return "no whole GPUs"
        return ", ".join(product.describe() for product in self.whole)


def _sorted_groups(groups: dict[str, set[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((key, tuple(sorted(values))) for key, values in sorted(groups.items()))


def facts_from_nodes(nodes: Iterable[NodeGpus]) -> ClusterFacts:
    whole: dict[str, ProductFacts] = {}
    mixed: dict[str, set[str]] = {}
    single: dict[str, set[str]] = {}
    shared: set[str] = set()
    sliced: set[str] = set()
    strategies: set[str] = set()
    for node in nodes:
        product = node.product or GPU
        if node.sharing in SHARED_STRATEGIES:
            strategies.add(node.sharing)
        for resource, amount in node.allocatable.items():
            if amount <= 0:
                continue
            if resource.startswith(MIG_PREFIX):
                mixed.setdefault(resource.removeprefix(MIG_PREFIX), set()).add(product)
            elif resource == SHARED_GPU:
                shared.add(product)
            elif resource == GPU and node.mig_single_profile:
                single.setdefault(node.mig_single_profile, set()).add(product)
            elif resource == GPU and node.sharing in SHARED_STRATEGIES:
                sliced.add(product)
            elif resource == GPU:
                known = whole.get(product)
                memory = node.memory_mib if known is None else known.memory_mib or node.memory_mib
                whole[product] = ProductFacts(
                    product=product,
                    nodes=(known.nodes if known else 0) + 1,
                    max_per_node=max(amount, known.max_per_node if known else 0),
                    memory_mib=memory,
                )
    return ClusterFacts(
        whole=tuple(whole[name] for name in sorted(whole)),
        mig_mixed=_sorted_groups(mixed),
        mig_single=_sorted_groups(single),
        shared_resource=tuple(sorted(shared)),
        time_sliced=tuple(sorted(sliced)),
        sharing_strategies=tuple(sorted(strategies)),
    )


def facts_from_configuration(products: Sequence[str], note: str) -> ClusterFacts:
    """Facts when the cluster could not be read: the configured products, nothing else known."""
    single: dict[str, set[str]] = {}
    whole: list[ProductFacts] = []
    for product in products:
        profile = mig_profile_of(product)
        if profile:
            single.setdefault(profile, set()).add(product)
        else:
            whole.append(ProductFacts(product=product, nodes=0, max_per_node=0))
    return ClusterFacts(whole=tuple(whole), mig_single=_sorted_groups(single), from_cluster=False, note=note)
