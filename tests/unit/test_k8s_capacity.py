"""Free GPUs per node and pool from nodes and pods (dicts as the API returns them), and cluster facts."""

from __future__ import annotations

from backends.k8s.capacity import capacity_from, node_gpus, pools_of
from backends.k8s.facts import facts_from_configuration, facts_from_nodes
from backends.k8s.objects import Node, Pod
from backends.types import GpuPool
from tests.helpers.k8s_objects import decoded, node, pod

A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
T4 = "Tesla-T4"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}

NODES = [
    node("gpu-1", product=A100, gpus=8, memory_mib=81920, taints=[GPU_TAINT]),
    node("gpu-2", product=A100, gpus=8, memory_mib=81920),
    node("gpu-3", product=A100, gpus=8, memory_mib=81920, cordoned=True),
    node("gpu-7", product=H100, gpus=4, memory_mib=81559),
    node("gpu-8", product=H100, gpus=4, memory_mib=81559, ready=False),
    node("mig-1", product=A100, gpus=0, mig={"3g.40gb": 2, "1g.10gb": 4}, mig_strategy="mixed"),
    node("ts-1", product=T4, gpus=0, shared=8, sharing="time-slicing"),
    node("cpu-1"),
]
PODS = [
    pod("a", node_name="gpu-1", gpus=6),
    pod("b", node_name="gpu-2", gpus=2),
    pod("c", node_name="gpu-2", gpus=4, phase="Succeeded"),  # terminated: holds nothing
    pod("d", node_name="gpu-2", gpus=3, phase="Failed"),
    pod("e", gpus=8, phase="Pending"),  # not bound: holds nothing yet
    pod("f", node_name="gpu-7", gpus={"nvidia.com/gpu": 1}, init_gpus={"nvidia.com/gpu": 3}),
    pod("g", node_name="mig-1", gpus={"nvidia.com/mig-3g.40gb": 1}),
    pod("h", node_name="ts-1", gpus={"nvidia.com/gpu.shared": 1}),
    pod("i", node_name="ts-1", gpus={"nvidia.com/gpu.shared": 1}),
    pod("j", node_name="gpu-3", gpus=8),  # on a cordoned node: not counted anywhere
]


def pools() -> dict[str, GpuPool]:
    capacity = capacity_from(decoded(NODES, Node), decoded(PODS, Pod))
    return {p.pool: p for p in pools_of(capacity)}


def test_whole_gpus_are_allocatable_minus_requests_of_live_pods() -> None:
    a100 = pools()[A100]
    assert a100.gpu_type == "a100"
    assert (a100.total, a100.allocated, a100.free) == (16, 8, 8)
    assert a100.nodes == ("gpu-1", "gpu-2")
    assert a100.free_per_node == (2, 6)


def test_cordoned_and_not_ready_nodes_are_left_out_and_listed() -> None:
    listed = pools()
    assert listed[A100].unavailable_nodes == ("gpu-3",)
    assert listed[H100].unavailable_nodes == ("gpu-8",)
    assert listed[H100].total == 4


def test_an_init_container_counts_when_it_asks_more_than_the_containers() -> None:
    h100 = pools()[H100]
    assert h100.allocated == 3 and h100.free_per_node == (1,)


def test_mig_slices_and_shared_gpus_are_pools_of_their_own() -> None:
    listed = pools()
    slices = listed[f"{A100}/mig-3g.40gb"]
    assert (slices.total, slices.allocated, slices.gpu_type) == (2, 1, "a100")
    assert listed[f"{A100}/mig-1g.10gb"].free == 4
    shared = listed[f"{T4}/shared"]
    assert (shared.total, shared.allocated, shared.gpu_type) == (8, 2, "t4")


def test_nodes_without_gpus_make_no_pool() -> None:
    assert all("cpu-1" not in p.nodes for p in pools().values())
    assert set(pools()) == {A100, H100, f"{A100}/mig-3g.40gb", f"{A100}/mig-1g.10gb", f"{T4}/shared"}


def test_a_time_sliced_node_without_renaming_is_a_shared_pool() -> None:
    nodes = [node("ts-2", product="Tesla-T4-SHARED", gpus=16, sharing="time-slicing")]
    (shared,) = pools_of(capacity_from(decoded(nodes, Node), []))
    assert shared.pool == "Tesla-T4-SHARED" and shared.gpu_type == "t4" and shared.total == 16


def test_a_node_without_a_product_label_is_pooled_by_resource() -> None:
    raw = node("bare", gpus=2)
    raw["metadata"]["labels"].pop("nvidia.com/gpu.product", None)
    (bare,) = pools_of(capacity_from(decoded([raw], Node), []))
    assert bare.pool == "nvidia.com/gpu" and bare.gpu_type is None and bare.free == 2


def test_requests_above_allocatable_never_go_negative() -> None:
    nodes = [node("gpu-1", product=A100, gpus=2)]
    (a100,) = pools_of(
        capacity_from(decoded(nodes, Node), decoded([pod("x", node_name="gpu-1", gpus=5)], Pod))
    )
    assert a100.allocated == 2 and a100.free == 0


def test_facts_say_what_the_nodes_offer() -> None:
    facts = facts_from_nodes(node_gpus(n) for n in decoded(NODES, Node))
    # Cordoned and NotReady nodes count here: they are part of the cluster (capacity leaves them out).
    assert [(p.product, p.nodes, p.max_per_node, p.memory_mib) for p in facts.whole] == [
        (A100, 3, 8, 81920),
        (H100, 2, 4, 81559),
    ]
    assert facts.mig_mixed == (("1g.10gb", (A100,)), ("3g.40gb", (A100,)))
    assert facts.mig_profiles == ("1g.10gb", "3g.40gb")
    assert facts.shared_resource == (T4,)
    assert facts.sharing_strategies == ("time-slicing",)
    assert facts.from_cluster


def test_single_strategy_mig_and_unrenamed_sharing_are_recognised() -> None:
    nodes = [
        node("mig-s", product="NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", gpus=7, mig_strategy="single"),
        node("ts-2", product="Tesla-T4-SHARED", gpus=16, sharing="time-slicing"),
    ]
    facts = facts_from_nodes(node_gpus(n) for n in decoded(nodes, Node))
    assert facts.whole == ()
    assert facts.mig_single == (("1g.5gb", ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",)),)
    assert facts.time_sliced == ("Tesla-T4-SHARED",)


def test_facts_from_configuration_say_they_are_not_from_the_cluster() -> None:
    facts = facts_from_configuration([A100, "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"], "connection refused")
    assert not facts.from_cluster and facts.note == "connection refused"
    assert [p.product for p in facts.whole] == [A100]
    assert facts.mig_single == (("1g.5gb", ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",)),)
