"""GPU nodes as the NVIDIA device plugin and GPU Feature Discovery present them, and the taints the
node lifecycle controller keeps in step with `spec.unschedulable` and the Ready condition.

Whole GPUs are `nvidia.com/gpu`; MIG's mixed strategy adds `nvidia.com/mig-<profile>` beside the
non-MIG GPUs, the single strategy turns every slice into an `nvidia.com/gpu` and renames the product
`<product>-MIG-<profile>`; time-slicing or MPS with `renameByDefault` advertises
`nvidia.com/gpu.shared`, without it `nvidia.com/gpu` × replicas and a `-SHARED` product.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tests.k8s_emulator.defaults import NOT_READY_TAINT

JsonObject = dict[str, Any]

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def parse_taint(text: str) -> JsonObject:
    """`key=value:Effect` or `key:Effect` (kubectl's form) as a taint object."""
    match = re.fullmatch(r"([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)", text)
    if match is None:
        raise ValueError(f"taint {text!r} is not key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
    key, value, effect = match.groups()
    taint: JsonObject = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def _mig_memory_mib(profile: str) -> int | None:
    match = re.search(r"\.(\d+)gb$", profile)
    return int(match.group(1)) * 1024 if match else None


def gpu_node(
    name: str,
    *,
    gpu_product: str | None = None,
    gpus: int = 0,
    gpu_memory_mib: int | None = None,
    gpu_family: str | None = None,
    mig: Mapping[str, int] | None = None,
    mig_strategy: str | None = None,
    sharing_strategy: str | None = None,
    shared_replicas: int | None = None,
    rename_shared: bool = False,
    taints: Iterable[str | Mapping[str, Any]] = (),
    labels: Mapping[str, str] | None = None,
    ready: bool = True,
    unschedulable: bool = False,
    cpu: str = "64",
    memory: str = "512Gi",
    pods: int = 110,
) -> JsonObject:
    node_labels: dict[str, str] = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    extended: dict[str, str] = {}
    has_gpus = gpus > 0 or bool(mig)
    if has_gpus:
        strategy = mig_strategy or ("mixed" if mig else "none")
        product = gpu_product or "NVIDIA-GPU"
        replicas = shared_replicas or 1
        sharing = sharing_strategy or ("time-slicing" if replicas > 1 else "none")
        node_labels.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.count": str(gpus),
                "nvidia.com/mig.strategy": strategy,
                "nvidia.com/gpu.sharing-strategy": sharing,
                "nvidia.com/gpu.replicas": str(replicas),
            }
        )
        if gpu_family:
            node_labels["nvidia.com/gpu.family"] = gpu_family
        if gpu_memory_mib is not None:
            node_labels["nvidia.com/gpu.memory"] = str(gpu_memory_mib)
        whole_gpus = gpus
        if mig and strategy == "single":
            (profile, slices), *others = mig.items()
            if others:
                raise ValueError("the MIG single strategy has one profile per node")
            product = f"{product}-MIG-{profile}"
            whole_gpus = slices
            if (memory_mib := _mig_memory_mib(profile)) is not None:
                node_labels["nvidia.com/gpu.memory"] = str(memory_mib)
        elif mig:
            for profile, count in mig.items():
                extended[f"nvidia.com/mig-{profile}"] = str(count)
                node_labels[f"nvidia.com/mig-{profile}.count"] = str(count)
                if (memory_mib := _mig_memory_mib(profile)) is not None:
                    node_labels[f"nvidia.com/mig-{profile}.memory"] = str(memory_mib)
        if sharing != "none" and rename_shared:
            extended["nvidia.com/gpu.shared"] = str(whole_gpus * replicas)
        else:
            if sharing != "none":
                product = f"{product}-SHARED"
            extended["nvidia.com/gpu"] = str(whole_gpus * replicas)
        node_labels["nvidia.com/gpu.product"] = product
    node_labels.update(labels or {})
    resources_ = {
        "cpu": cpu,
        "memory": memory,
        "pods": str(pods),
        "ephemeral-storage": "1Ti",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        **extended,
    }
    node: JsonObject = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": node_labels, "annotations": {}},
        "spec": {
            "taints": [parse_taint(t) if isinstance(t, str) else dict(t) for t in taints],
        },
        "status": {
            "capacity": dict(resources_),
            "allocatable": dict(resources_),
            "conditions": _conditions(ready),
            "addresses": [
                {"type": "InternalIP", "address": _address(name)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "",
                "containerRuntimeVersion": "containerd://1.7.20",
                "kernelVersion": "6.8.0",
                "kubeProxyVersion": "v1.30.0",
                "kubeletVersion": "v1.30.0",
                "machineID": "",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.4 LTS",
                "systemUUID": "",
            },
        },
    }
    if unschedulable:
        node["spec"]["unschedulable"] = True
    sync_node_taints(node)
    return node


def _address(name: str) -> str:
    digest = sum(name.encode()) % 250
    return f"10.0.{len(name) % 250}.{digest + 1}"


def _conditions(ready: bool) -> list[JsonObject]:
    stamp = "2024-01-01T00:00:00Z"
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, reason, message in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status"
            if ready
            else "container runtime network not ready: NetworkReady=false",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    return conditions


def is_ready(node: JsonObject) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def sync_node_taints(node: JsonObject) -> bool:
    """The node lifecycle controller's taints for cordoned and NotReady nodes; True when changed."""
    spec = node.setdefault("spec", {})
    before = list(spec.get("taints") or [])
    wanted = {
        (UNSCHEDULABLE_TAINT, "NoSchedule"): bool(spec.get("unschedulable")),
        (NOT_READY_TAINT, "NoSchedule"): not is_ready(node),
        (NOT_READY_TAINT, "NoExecute"): not is_ready(node),
    }
    taints = [t for t in before if wanted.get((t.get("key"), t.get("effect")), True)]
    present = {(t.get("key"), t.get("effect")) for t in taints}
    for (key, effect), want in wanted.items():
        if want and (key, effect) not in present:
            taint: JsonObject = {"key": key, "effect": effect}
            if effect == "NoExecute":
                taint["timeAdded"] = "2024-01-01T00:00:00Z"
            taints.append(taint)
    if taints:
        spec["taints"] = taints
    else:
        spec.pop("taints", None)
    return taints != before
