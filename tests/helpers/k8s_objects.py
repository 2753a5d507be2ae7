"""Kubernetes objects as the API returns them: plain dicts in the API's JSON shape (camelCase,
quantities as strings), and their decoding through the same msgspec decoders the backend uses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from backends.k8s.objects import Deployment, Job, Pod, decode_list
from backends.k8s.workloads import Workload, collect_workloads
from tests.k8s_emulator import KubeEmulator

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


def occupy(kube: KubeEmulator, node: str, gpus: int, resource: str = "nvidia.com/gpu") -> None:
    """Another team's pod (namespace other) holding GPUs on a node."""
    amount = {resource: str(gpus)}
    kube.put_object(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"held-{node}-{resource.rsplit('/', 1)[-1]}", "namespace": "other"},
            "spec": {
                "nodeName": node,
                "containers": [
                    {"name": "c", "image": "busybox:1", "resources": {"limits": amount, "requests": amount}}
                ],
                "tolerations": [GPU_TOLERATION],
            },
        }
    )


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


def node_affinity(*expressions: JSON) -> JSON:
    """A required node affinity of one selector term."""
    terms = [{"matchExpressions": list(expressions)}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}


A100_AFFINITY = node_affinity(
    {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}
)
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def labels(name: str, workload: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "gpu-concierge",
        "app.kubernetes.io/name": name,
        "gpu-concierge/request-id": f"req-{name}",
        "gpu-concierge/workload": workload,
    }


def meta(name: str, namespace: str, workload: str, *, deleting: bool = False) -> JSON:
    metadata: JSON = {
        "name": name,
        "namespace": namespace,
        "labels": labels(name, workload),
        "annotations": {
            "gpu-concierge/requester": "U-ALICE",
            "gpu-concierge/k8s-user": "alice",
            "gpu-concierge/gpu-type": "a100",
        },
        "creationTimestamp": TIMESTAMP,
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-23T21:59:00Z"
    return metadata


def template(name: str, workload: str, gpus: int) -> JSON:
    return {
        "metadata": {"labels": labels(name, workload)},
        "spec": {
            "containers": [container(gpus={"nvidia.com/gpu": gpus})],
            "tolerations": [GPU_TOLERATION],
            "affinity": A100_AFFINITY,
        },
    }


def deployment(
    name: str,
    namespace: str = "research",
    *,
    replicas: int = 1,
    ready: int = 0,
    gpus: int = 1,
    deleting: bool = False,
    conditions: Sequence[JSON] = (),
) -> JSON:
    return {
        "metadata": meta(name, namespace, "service", deleting=deleting),
        "spec": {"replicas": replicas, "template": template(name, "service", gpus)},
        "status": {"replicas": replicas, "readyReplicas": ready, "conditions": list(conditions)}
        if ready
        else {"replicas": replicas, "conditions": list(conditions)},
    }


def job(
    name: str,
    namespace: str = "research",
    *,
    gpus: int = 4,
    parallelism: int = 1,
    deadline: int | None = 14_400,
    status: Mapping[str, Any] | None = None,
    suspend: bool = False,
) -> JSON:
    spec: JSON = {"parallelism": parallelism, "backoffLimit": 0, "template": template(name, "batch", gpus)}
    if deadline:
        spec["activeDeadlineSeconds"] = deadline
    if suspend:
        spec["suspend"] = True
    return {"metadata": meta(name, namespace, "batch"), "spec": spec, "status": dict(status or {})}


def member(
    workload_name: str,
    suffix: str,
    workload: str,
    namespace: str = "research",
    **fields: Any,
) -> JSON:
    made = pod(f"{workload_name}-{suffix}", namespace, **fields)
    made["metadata"]["labels"] = labels(workload_name, workload)
    made["spec"]["tolerations"] = [GPU_TOLERATION]
    made["spec"]["affinity"] = A100_AFFINITY
    return made


def running_container(started: str = "2026-11-23T21:30:00Z") -> JSON:
    return {"name": "main", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": started}}}


def workloads(
    deployments: Sequence[JSON] = (), jobs: Sequence[JSON] = (), pods: Sequence[JSON] = ()
) -> list[Workload]:
    return collect_workloads(decoded(deployments, Deployment), decoded(jobs, Job), decoded(pods, Pod))


def only(deployments: Sequence[JSON] = (), jobs: Sequence[JSON] = (), pods: Sequence[JSON] = ()) -> Workload:
    (found,) = workloads(deployments, jobs, pods)
    return found
