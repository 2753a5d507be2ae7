"""Pairing GPU samples with their holders: Kubernetes pod labels (backends/k8s/gpu_holders.py),
Slurm GRES indices, and the join (backends/gpu/attribution.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from backends.gpu.attribution import attribute
from backends.gpu.dcgm import parse_metrics
from backends.gpu.samples import GpuHolder, GpuSample
from backends.k8s.gpu_holders import gpu_holders, owners_from_workloads, pod_gpu_holder
from backends.k8s.manifests import MANAGED_BY_LABEL, NAME_LABEL, REQUEST_LABEL, WORKLOAD_LABEL
from backends.k8s.objects import ObjectMeta, PodSpec
from backends.k8s.workloads import Workload
from backends.slurm.gpu_allocation import parse_gpu_allocations
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.scontrol_text import CLUSTER, LOCAL_22_05

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

OUR_POD_LABELS = {
    MANAGED_BY_LABEL: "gpu-concierge",
    NAME_LABEL: "train-resnet",
    REQUEST_LABEL: "r-20261124-0042",
    WORKLOAD_LABEL: "service",
    "pod-template-hash": "6d4f9b7c8",
}


def test_our_pod_is_held_by_its_workload() -> None:
    assert pod_gpu_holder("ml-alice", "train-resnet-6d4f9b7c8-x2x4q", OUR_POD_LABELS) == GpuHolder(
        backend="k8s", job_id="ml-alice/train-resnet", owner="ml-alice"
    )
    owners = {"ml-alice/train-resnet": "alice@example.com"}
    assert pod_gpu_holder("ml-alice", "train-resnet-6d4f9b7c8-x2x4q", OUR_POD_LABELS, owners).owner == (
        "alice@example.com"
    )


def test_a_pod_not_ours_is_its_own_holder_owned_by_its_namespace() -> None:
    foreign = {"app": "jupyter", NAME_LABEL: "jupyter"}  # a name label, but not managed by us
    assert pod_gpu_holder("research", "jupyter-bob-0", foreign) == GpuHolder(
        backend="k8s", job_id="research/jupyter-bob-0", owner="research"
    )
    assert pod_gpu_holder("research", "jupyter-bob-0", None).job_id == "research/jupyter-bob-0"


def test_owners_from_our_workload_annotations() -> None:
    def workload(name: str, annotations: dict[str, str]) -> Workload:
        meta = ObjectMeta(name=name, namespace="ml-alice", annotations=annotations)
        return Workload(kind="Job", metadata=meta, pod_spec=PodSpec(), desired=1, pods=())

    owners = owners_from_workloads(
        [
            workload("a", {"gpu-concierge/k8s-user": "alice", "gpu-concierge/requester": "U012ABC"}),
            workload("b", {"gpu-concierge/requester": "U012ABC"}),
            workload("c", {}),
        ]
    )
    assert owners == {"ml-alice/a": "alice", "ml-alice/b": "U012ABC"}


def test_kubernetes_samples_are_attributed_by_pod() -> None:
    samples = parse_metrics(fixture("kubernetes.txt"), at=T0)
    labels = {("ml-alice", "train-resnet-6d4f9b7c8-x2x4q"): OUR_POD_LABELS}
    holders = gpu_holders(samples, labels, {"ml-alice/train-resnet": "alice"})
    assert [(s.gpu, h) for s, h in attribute(samples, {}, holders)] == [
        ("0", GpuHolder(backend="k8s", job_id="ml-alice/train-resnet", owner="alice")),
        ("1", GpuHolder(backend="k8s", job_id="research/jupyter-bob-0", owner="research")),
        ("2", None),  # idle: no pod labels
    ]


def test_slurm_samples_are_attributed_by_node_and_index() -> None:
    allocations = parse_gpu_allocations(LOCAL_22_05 + CLUSTER)

    def sample(host: str, gpu: str) -> GpuSample:
        return GpuSample(at=T0, host=host, gpu=gpu, source="nvml")

    samples = [
        sample("vm", "0"),
        sample("vm", "2"),  # free (job 79 completed)
        sample("vm.cluster.example", "3"),  # FQDN from the node, short name in Slurm
        sample("gpu04", "5"),
        sample("gpu05", "1"),
        sample("gpu05", "1/9"),  # a MIG device: not matched to Slurm indices
    ]
    assert [(s.host, s.gpu, h.job_id if h else None) for s, h in attribute(samples, allocations, {})] == [
        ("vm", "0", "81"),
        ("vm", "2", None),
        ("vm.cluster.example", "3", "82"),
        ("gpu04", "5", "5001"),
        ("gpu05", "1", "5008"),
        ("gpu05", "1/9", None),
    ]


def test_a_pod_holder_wins_over_a_slurm_index_on_the_same_host() -> None:
    held = GpuSample(at=T0, host="vm", gpu="0", source="dcgm", pod="p", namespace="ns")
    k8s = {("ns", "p"): GpuHolder(backend="k8s", job_id="ns/p", owner="ns")}
    slurm = {("vm", "0"): GpuHolder(backend="slurm", job_id="81", owner="alice")}
    assert attribute([held], slurm, k8s) == [(held, k8s[("ns", "p")])]
