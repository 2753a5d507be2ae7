"""Kubernetes objects as the API returns them (the builders other k8s tests use) and their decoding.

The builders write plain dicts in the API's JSON shape (camelCase, quantities as strings); tests
decode them through the same msgspec decoders the backend uses on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from backends.k8s.objects import Event, Node, Pod, count, decode_list, decode_object, quantity

T = TypeVar("T")
JSON = dict[str, Any]
TIMESTAMP = "2026-11-23T21:00:00Z"


def decoded(items: Sequence[JSON], kind: type[T]) -> list[T]:
    """Items decoded as a LIST response carrying them would be."""
    body = json.dumps({"kind": f"{kind.__name__}List", "apiVersion": "v1", "items": list(items)})
    return decode_list(body.encode(), kind)


def node(
    name: str,
    *,
    product: str | None = None,
    gpus: int = 0,
    memory_mib: int | None = None,
    mig: Mapping[str, int] | None = None,
    mig_strategy: str | None = None,
    shared: int = 0,
    sharing: str | None = None,
    taints: Sequence[JSON] = (),
    ready: bool = True,
    cordoned: bool = False,
    labels: Mapping[str, str] | None = None,
) -> JSON:
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if product:
        all_labels["nvidia.com/gpu.product"] = product
        all_labels["nvidia.com/gpu.count"] = str(gpus)
    if memory_mib:
        all_labels["nvidia.com/gpu.memory"] = str(memory_mib)
    if mig_strategy:
        all_labels["nvidia.com/mig.strategy"] = mig_strategy
    if sharing:
        all_labels["nvidia.com/gpu.sharing-strategy"] = sharing
    allocatable = {"cpu": "64", "memory": "512Gi", "pods": "110"}
    if gpus or product:
        allocatable["nvidia.com/gpu"] = str(gpus)
    if shared:
        allocatable["nvidia.com/gpu.shared"] = str(shared)
    for profile, amount in (mig or {}).items():
        allocatable[f"nvidia.com/mig-{profile}"] = str(amount)
    spec: JSON = {"taints": list(taints)} if taints else {}
    if cordoned:
        spec["unschedulable"] = True
        spec.setdefault("taints", []).append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": TIMESTAMP}
        )
    return {
        "metadata": {
            "name": name,
            "labels": all_labels,
            "creationTimestamp": TIMESTAMP,
            "uid": f"uid-{name}",
        },
        "spec": spec,
        "status": {
            "capacity": dict(allocatable),
            "allocatable": allocatable,
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                {
                    "type": "Ready",
                    "status": "True" if ready else "Unknown",
                    "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                    "lastTransitionTime": TIMESTAMP,
                },
            ],
        },
    }


def container(
    name: str = "main", *, gpus: Mapping[str, int] | None = None, image: str = "nvidia/cuda:12.4.1"
) -> JSON:
    amounts = {resource: str(amount) for resource, amount in (gpus or {}).items()}
    return {
        "name": name,
        "image": image,
        "resources": {"limits": dict(amounts), "requests": dict(amounts)} if amounts else {},
    }


def pod(
    name: str,
    namespace: str = "research",
    *,
    node_name: str | None = None,
    gpus: Mapping[str, int] | int | None = None,
    phase: str = "Running",
    labels: Mapping[str, str] | None = None,
    conditions: Sequence[JSON] | None = None,
    container_statuses: Sequence[JSON] = (),
    tolerations: Sequence[JSON] = (),
    affinity: JSON | None = None,
    init_gpus: Mapping[str, int] | None = None,
    volumes: Sequence[JSON] = (),
) -> JSON:
    asked = {"nvidia.com/gpu": gpus} if isinstance(gpus, int) else gpus
    spec: JSON = {"containers": [container(gpus=asked)], "restartPolicy": "Never"}
    if node_name:
        spec["nodeName"] = node_name
    if init_gpus:
        spec["initContainers"] = [container("setup", gpus=init_gpus)]
    if tolerations:
        spec["tolerations"] = list(tolerations)
    if affinity:
        spec["affinity"] = affinity
    if volumes:
        spec["volumes"] = list(volumes)
    if conditions is None:
        conditions = (
            [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]
            if phase == "Running"
            else []
        )
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels or {}),
            "creationTimestamp": TIMESTAMP,
            "uid": f"uid-{name}",
        },
        "spec": spec,
        "status": {
            "phase": phase,
            "conditions": list(conditions),
            "containerStatuses": list(container_statuses),
        },
    }


def unschedulable(message: str) -> list[JSON]:
    return [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": TIMESTAMP,
        }
    ]


def waiting(reason: str, message: str = "", *, restarts: int = 0, last_exit: int | None = None) -> JSON:
    status: JSON = {
        "name": "main",
        "image": "docker.io/library/nope:1",
        "ready": False,
        "restartCount": restarts,
        "state": {"waiting": {"reason": reason, "message": message}},
        "lastState": {},
    }
    if last_exit is not None:
        status["lastState"] = {
            "terminated": {"exitCode": last_exit, "reason": "Error", "finishedAt": TIMESTAMP}
        }
    return status


def event(
    pod_name: str, reason: str, message: str, *, kind: str = "Pod", namespace: str = "research"
) -> JSON:
    return {
        "metadata": {"name": f"{pod_name}.{reason.lower()}", "namespace": namespace},
        "involvedObject": {"kind": kind, "name": pod_name, "namespace": namespace},
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 3,
        "firstTimestamp": TIMESTAMP,
        "lastTimestamp": TIMESTAMP,
        "source": {"component": "default-scheduler"},
    }


# -- decoding ---------------------------------------------------------------------------------


def test_a_pod_list_decodes_the_fields_we_read_and_ignores_the_rest() -> None:
    raw = pod(
        "train-abc",
        node_name="gpu-1",
        gpus=4,
        container_statuses=[waiting("CrashLoopBackOff", "back-off 5m0s", restarts=7, last_exit=137)],
    )
    raw["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
    raw["spec"]["dnsPolicy"] = "ClusterFirst"
    (decoded_pod,) = decoded([raw], Pod)
    assert decoded_pod.metadata.name == "train-abc"
    assert decoded_pod.spec.node_name == "gpu-1"
    assert decoded_pod.spec.containers[0].resources.limits == {"nvidia.com/gpu": "4"}
    status = decoded_pod.status.container_statuses[0]
    assert status.restart_count == 7
    assert status.state.waiting is not None and status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated is not None and status.last_state.terminated.exit_code == 137
    assert decoded_pod.metadata.creation_timestamp is not None
    assert decoded_pod.metadata.creation_timestamp.year == 2026


def test_a_dict_and_its_json_decode_to_the_same_object() -> None:
    raw = node(
        "gpu-1", product="NVIDIA-A100-SXM4-80GB", gpus=8, taints=[{"key": "a", "effect": "NoSchedule"}]
    )
    assert decode_object(raw, Node) == decode_object(json.dumps(raw).encode(), Node)


def test_an_empty_list_and_missing_fields_decode_to_defaults() -> None:
    assert decode_list(b'{"kind":"PodList","items":null}', Pod) == []
    assert decode_list(b'{"kind":"PodList"}', Pod) == []
    (bare,) = decode_list(b'{"items":[{}]}', Event)
    assert bare.reason == "" and bare.times == 1 and bare.last_seen is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", Decimal(4)),
        ("500m", Decimal("0.5")),
        ("64Gi", Decimal(64 * 1024**3)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("2E", Decimal(2 * 1000**6)),
        ("1.5Mi", Decimal("1.5") * 1024**2),
        ("garbage", Decimal(0)),
        ("", Decimal(0)),
    ],
)
def test_quantities_read_as_the_api_writes_them(text: str, expected: Decimal) -> None:
    assert quantity(text) == expected


def test_whole_unit_counts_round_fractions_up() -> None:
    assert count("2") == 2
    assert count("1500m") == 2
    assert count("0") == 0
