"""`capacity` and a full status pass on an emulated cluster of 1,000 GPU nodes and 20,000 pods.

Goal (issue 3): ≤ 300 ms of our own processing for each, the HTTP transfer excluded; both printed.
Three figures per operation, medians of `--repeat` runs:
  end to end  the real `KubernetesBackend.capacity()` / `.statuses(every workload of ours)`;
  transfer    the same LISTs, fetched as raw bytes through the same kubernetes ApiClient
              (this includes the emulator's own JSON encoding, as a real API server's would be);
  ours        the backend's decoding and logic on those already-fetched bytes, as the backend does
              them (decode_list → capacity_from → pools_of; decode_list → collect_workloads →
              workload_status per reference).
The cluster is the test emulator (tests/k8s_emulator): A100 (some MIG, mixed and single), H100 and
L40S (some time-sliced) nodes, a few cordoned or NotReady; our Deployments (with their ReplicaSets)
and Jobs with their pods, running, pending, finished; the rest of the pods are other people's.

Usage: .venv/bin/python bench/k8s_capacity.py [--nodes 1000] [--pods 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as `python bench/k8s_capacity.py`: the repo root is not on sys.path then, and the emulator
# lives in tests/ (not an installed package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes.client import ApiClient

from backends.bulk import collector_paused
from backends.k8s.backend import RUNNING_PODS, KubernetesBackend
from backends.k8s.capacity import capacity_from, pools_of
from backends.k8s.manifests import (
    GPU_TYPE_ANNOTATION,
    K8S_USER_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    OUR_SELECTOR,
    REQUEST_LABEL,
    REQUESTER_ANNOTATION,
    WORKLOAD_LABEL,
)
from backends.k8s.objects import Deployment, Job, Node, Pod, decode_list
from backends.k8s.settings import K8sSettings
from backends.k8s.workloads import Workload, collect_workloads, find_workloads, workload_status
from backends.types import JobRef, JobStatus
from tests.k8s_emulator import BOT_USER, KubeEmulator
from tests.k8s_emulator.workloads import HASH_LABEL

GOAL_MS = 300.0
TOKEN = "bench-bot-token"  # the emulator's made-up bearer token
OUR_NAMESPACES = [f"research-{i:02d}" for i in range(20)]
OTHER_NAMESPACES = [f"team-{i:02d}" for i in range(40)]
STAMP = "2024-05-01T08:00:00Z"
# What each capacity / status pass asks the API for (backend.py: `_capacity_snapshot`, `_workloads`).
CAPACITY_LISTS = [("/api/v1/nodes", []), ("/api/v1/pods", [("fieldSelector", RUNNING_PODS)])]
STATUS_LISTS = [
    ("/apis/apps/v1/deployments", [("labelSelector", OUR_SELECTOR)]),
    ("/apis/batch/v1/jobs", [("labelSelector", OUR_SELECTOR)]),
    ("/api/v1/pods", [("labelSelector", OUR_SELECTOR)]),
]


# ---- the cluster ------------------------------------------------------------------------------


def add_nodes(kube: KubeEmulator, count: int) -> list[tuple[str, str]]:
    """GPU nodes; returns (node name, the GPU resource its pods ask for) for the available ones."""
    usable: list[tuple[str, str]] = []
    for i in range(count):
        name = f"gpu-{i:04d}"
        ready, cordoned = i % 70 != 69, i % 50 == 49
        kind = i % 10
        resource = "nvidia.com/gpu"
        if kind < 3:
            kube.add_node(
                name,
                gpu_product="NVIDIA-A100-SXM4-80GB",
                gpus=8,
                gpu_memory_mib=81920,
                ready=ready,
                unschedulable=cordoned,
            )
        elif kind == 3:  # MIG, mixed: 4 whole GPUs and slices of the other 4
            kube.add_node(
                name,
                gpu_product="NVIDIA-A100-SXM4-80GB",
                gpus=4,
                gpu_memory_mib=81920,
                mig={"3g.40gb": 4, "1g.10gb": 14},
                ready=ready,
                unschedulable=cordoned,
            )
            resource = "nvidia.com/mig-1g.10gb" if i % 20 == 3 else "nvidia.com/gpu"
        elif kind == 4:  # MIG, single: every slice is an nvidia.com/gpu
            kube.add_node(
                name,
                gpu_product="NVIDIA-A100-SXM4-80GB",
                gpus=8,
                gpu_memory_mib=81920,
                mig={"1g.10gb": 56},
                mig_strategy="single",
                ready=ready,
                unschedulable=cordoned,
            )
        elif kind < 8:
            kube.add_node(
                name,
                gpu_product="NVIDIA-H100-80GB-HBM3",
                gpus=8,
                gpu_memory_mib=81559,
                ready=ready,
                unschedulable=cordoned,
                taints=["nvidia.com/gpu=present:NoSchedule"],
            )
        elif kind == 8:  # time-sliced, renamed to nvidia.com/gpu.shared
            kube.add_node(
                name,
                gpu_product="NVIDIA-L40S",
                gpus=4,
                gpu_memory_mib=46068,
                shared_replicas=4,
                rename_shared=True,
                ready=ready,
                unschedulable=cordoned,
            )
            resource = "nvidia.com/gpu.shared"
        else:
            kube.add_node(
                name,
                gpu_product="NVIDIA-L40S",
                gpus=4,
                gpu_memory_mib=46068,
                ready=ready,
                unschedulable=cordoned,
            )
        if ready and not cordoned:
            usable.append((name, resource))
    return usable


def _container(image: str, resource: str | None, amount: int = 1) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    if resource:
        container["resources"] = {"limits": {resource: str(amount)}}
    return container


def _ours_labels(name: str, workload: str, i: int) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAME_LABEL: name,
        REQUEST_LABEL: f"req-{i:06d}",
        WORKLOAD_LABEL: workload,
    }


def _annotations(i: int) -> dict[str, str]:
    person = f"user{i % 150:03d}"
    return {
        REQUESTER_ANNOTATION: f"slack:U{i % 150:05d}",
        K8S_USER_ANNOTATION: person,
        GPU_TYPE_ANNOTATION: ("a100", "h100", "l40s")[i % 3],
    }


def _pending_affinity() -> dict[str, Any]:
    """A product no node has: the pod stays Pending, Unschedulable, as a queued GPU ask does."""
    term = {
        "matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-B200"]}]
    }
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


class Placer:
    """Round-robin over the available nodes, never asking more GPUs than a node has left."""

    def __init__(self, usable: list[tuple[str, str]], per_node: int = 8) -> None:
        self.usable, self.left = usable, {name: per_node for name, _ in usable}
        self.next = 0

    def place(self) -> tuple[str, str | None]:
        name, resource = self.usable[self.next % len(self.usable)]
        self.next += 1
        if self.left[name] > 0:
            self.left[name] -= 1
            return name, resource
        return name, None


def _pod(
    name: str,
    namespace: str,
    labels: dict[str, str],
    spec: dict[str, Any],
    owner: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if owner:
        metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    if status:
        pod["status"] = status
    return pod


def _finished_status(phase: str) -> dict[str, Any]:
    code = 0 if phase == "Succeeded" else 1
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": STAMP,
        "finishedAt": "2024-05-01T09:00:00Z",
    }
    return {
        "phase": phase,
        "startTime": STAMP,
        "containerStatuses": [
            {
                "name": "main",
                "image": "train:1",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }


def seed_ours(kube: KubeEmulator, placer: Placer, deployments: int, jobs: int) -> int:
    """Our Deployments (ReplicaSets made by the emulator's controller) and Jobs, with their pods."""
    templates: dict[tuple[str, str], dict[str, Any]] = {}
    objects: list[dict[str, Any]] = []
    for i in range(deployments):
        namespace, name = OUR_NAMESPACES[i % len(OUR_NAMESPACES)], f"serve-{i:05d}"
        labels = _ours_labels(name, "service", i)
        template: dict[str, Any] = {
            "metadata": {"labels": labels},
            "spec": {"containers": [_container("vllm/vllm-openai:v0.11.0", "nvidia.com/gpu")]},
        }
        templates[(namespace, name)] = template
        objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": _annotations(i),
                },
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {NAME_LABEL: name}},
                    "template": template,
                    "strategy": {"type": "Recreate"},
                },
            }
        )
    # Scaled to 0 first, so the controller makes each ReplicaSet (its name holds the template hash)
    # and no pods; our pods are then stored bound to nodes, owned by it, and the scale put back.
    kube.put_objects(objects)
    replicasets = {
        (rs["metadata"]["namespace"], rs["metadata"]["ownerReferences"][0]["name"]): rs
        for rs in kube.objects("apps/v1", "ReplicaSet")
    }
    scaled: list[dict[str, Any]] = []
    pods: list[dict[str, Any]] = []
    for deployment in objects:
        meta = deployment["metadata"]
        replicas = 1 + int(meta["name"][-1]) % 2  # one or two replicas
        deployment["spec"]["replicas"] = replicas
        scaled.append(deployment)
        rs = replicasets[(meta["namespace"], meta["name"])]
        owner = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs["metadata"]["name"],
            "uid": rs["metadata"]["uid"],
        }
        for r in range(replicas):
            template = templates[(meta["namespace"], meta["name"])]
            pod_spec: dict[str, Any] = {"containers": [dict(c) for c in template["spec"]["containers"]]}
            labels = {**template["metadata"]["labels"], HASH_LABEL: rs["metadata"]["labels"][HASH_LABEL]}
            name = f"{rs['metadata']['name']}-{r:05d}"
            if int(meta["name"][-2:]) % 25 == 0:  # some wait for a GPU
                pod_spec["affinity"] = _pending_affinity()
            else:
                pod_spec["nodeName"] = placer.place()[0]
            pods.append(_pod(name, meta["namespace"], labels, pod_spec, owner))
    for i in range(jobs):
        namespace, name = OUR_NAMESPACES[i % len(OUR_NAMESPACES)], f"train-{i:05d}"
        uid = f"00000000-0000-4000-8000-{i:012d}"
        labels = _ours_labels(name, "batch", i)
        parallelism = 2 if i % 10 == 0 else 1
        spec_job: dict[str, Any] = {
            "backoffLimit": 0,
            "parallelism": parallelism,
            "completions": parallelism,
            "activeDeadlineSeconds": 86_400,
            "ttlSecondsAfterFinished": 86_400,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"restartPolicy": "Never", "containers": [_container("train:1", "nvidia.com/gpu")]},
            },
        }
        scaled.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": uid,
                    "labels": labels,
                    "annotations": _annotations(i),
                },
                "spec": spec_job,
            }
        )
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid}
        pod_labels = {
            **labels,
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        for p in range(parallelism):
            spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [_container("train:1", None)]}
            status: dict[str, Any] | None = None
            node, resource = placer.place()
            spec["containers"][0] = _container("train:1", resource or "nvidia.com/gpu")
            if i % 7 == 0:
                spec["nodeName"], status = node, _finished_status("Succeeded")
            elif i % 31 == 0:
                spec["nodeName"], status = node, _finished_status("Failed")
            elif i % 9 == 0:
                spec["affinity"] = _pending_affinity()
            else:
                spec["nodeName"] = node
            pods.append(
                _pod(f"{name}-{p}-x{i % 100:02d}ab", namespace, dict(pod_labels), spec, owner, status)
            )
    kube.put_objects([*scaled, *pods])
    return len(pods)


def others_pods(placer: Placer, count: int) -> Iterator[dict[str, Any]]:
    """Other people's pods: mostly CPU-only, some on GPUs, a few finished; none of our labels."""
    for i in range(count):
        namespace = OTHER_NAMESPACES[i % len(OTHER_NAMESPACES)]
        node, resource = placer.place()
        gpu = resource if i % 3 == 0 else None
        spec = {"nodeName": node, "containers": [_container(f"team/app-{i % 37}:2", gpu)]}
        owner = {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": f"app-{i % 500}",
            "uid": f"ss-{i % 500}",
        }
        status = _finished_status("Succeeded") if i % 40 == 0 else None
        yield _pod(f"app-{i:06d}", namespace, {"app": f"app-{i % 500}", "tier": "web"}, spec, owner, status)


# ---- measuring ---------------------------------------------------------------------------------


def fetch_raw(client: ApiClient, path: str, query: list[tuple[str, str]]) -> bytes:
    """One LIST as bytes, the way KubeApi._send makes it (same client, headers and auth)."""
    verb, url, headers, payload, _ = client.param_serialize(
        method="GET",
        resource_path=path,
        query_params=list(query),
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = client.call_api(verb, url, header_params=headers, body=payload, _request_timeout=30.0)
    return bytes(response.read())  # type: ignore[no-untyped-call]


def capacity_from_bytes(nodes: bytes, pods: bytes) -> list[Any]:
    """backend.capacity() after its two LISTs: decode both, then capacity_from and pools_of."""
    with collector_paused():
        return pools_of(capacity_from(decode_list(nodes, Node), decode_list(pods, Pod)))


def statuses_from_bytes(lists: list[bytes], refs: list[JobRef], now: datetime) -> list[JobStatus]:
    """backend.statuses() after its three LISTs (the same lookup as KubernetesBackend.statuses)."""
    deployments, jobs, pods = lists
    with collector_paused():
        workloads = collect_workloads(
            decode_list(deployments, Deployment), decode_list(jobs, Job), decode_list(pods, Pod)
        )
        by_id: dict[str, list[Workload]] = {}
        for workload in workloads:
            by_id.setdefault(workload.job_id, []).append(workload)
        found: list[JobStatus] = []
        seen: set[tuple[str, str]] = set()
        for ref in refs:
            for workload in by_id.get(ref.job_id) or find_workloads(workloads, ref.job_id):
                if (workload.kind, workload.job_id) not in seen:
                    seen.add((workload.kind, workload.job_id))
                    found.append(workload_status(workload, now))
        return found


def median_ms(repeat: int, work: Callable[[], object]) -> float:
    work()  # warm: imports, decoders, connection pool
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def report(title: str, end_to_end: float, transfer: float, ours: float, sent: int) -> None:
    print(f"{title}:")
    print(f"  end to end (backend)      {end_to_end:8.1f} ms")
    print(f"  HTTP transfer alone       {transfer:8.1f} ms   ({sent / 1e6:.1f} MB in the LISTs)")
    print(f"  our own processing        {ours:8.1f} ms   goal ≤ {GOAL_MS:.0f} ms: {ours / GOAL_MS:.2f}× it")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    with KubeEmulator() as kube:
        kube.add_token(TOKEN, BOT_USER)
        kube.allow_bot()
        kube.put_objects(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            for ns in OUR_NAMESPACES + OTHER_NAMESPACES
        )
        placer = Placer(add_nodes(kube, args.nodes))
        ours = seed_ours(kube, placer, args.deployments, args.jobs)
        kube.put_objects(others_pods(placer, args.pods - ours))  # last: nothing reconciles them
        seeded = time.perf_counter() - started

        backend = KubernetesBackend(
            K8sSettings(), api_client_factory=lambda: ApiClient(kube.client_configuration(TOKEN))
        )
        raw_client = ApiClient(kube.client_configuration(TOKEN))
        refs = [
            JobRef(backend="k8s", job_id=f"{d['metadata']['namespace']}/{d['metadata']['name']}")
            for kind in ("Deployment", "Job")
            for d in kube.objects(
                "apps/v1" if kind == "Deployment" else "batch/v1", kind, label_selector=OUR_SELECTOR
            )
        ]
        now = datetime.now(UTC)

        capacity_bytes = [fetch_raw(raw_client, path, query) for path, query in CAPACITY_LISTS]
        status_bytes = [fetch_raw(raw_client, path, query) for path, query in STATUS_LISTS]
        pools = backend.capacity()
        statuses = backend.statuses(refs)
        assert pools == capacity_from_bytes(*capacity_bytes), (
            "the bench's capacity differs from the backend's"
        )
        assert len(statuses) == len(statuses_from_bytes(status_bytes, refs, now)) == len(refs)
        all_pods = len(decode_list(fetch_raw(raw_client, "/api/v1/pods", []), Pod))

        print(
            f"cluster (emulated, seeded in {seeded:.1f} s): {len(decode_list(capacity_bytes[0], Node)):,} "
            f"nodes, {all_pods:,} pods ({len(decode_list(capacity_bytes[1], Pod)):,} not terminated), "
            f"{len(pools)} GPU pools"
        )
        print(
            f"ours: {len(refs):,} workloads ({args.deployments:,} Deployments, {args.jobs:,} Jobs), "
            f"{len(decode_list(status_bytes[2], Pod)):,} pods; medians of {args.repeat} runs"
        )
        states = Counter(status.state.value for status in statuses)
        print("states: " + ", ".join(f"{state} {n:,}" for state, n in states.most_common()))
        print("pools: " + ", ".join(f"{p.pool} {p.total - p.allocated}/{p.total} free" for p in pools))
        report(
            "capacity (nodes LIST + non-terminated pods LIST)",
            median_ms(args.repeat, backend.capacity),
            median_ms(args.repeat, lambda: [fetch_raw(raw_client, p, q) for p, q in CAPACITY_LISTS]),
            median_ms(args.repeat, lambda: capacity_from_bytes(*capacity_bytes)),
            sum(map(len, capacity_bytes)),
        )
        report(
            f"status pass ({len(refs):,} refs; Deployments, Jobs, Pods LISTs by our label)",
            median_ms(args.repeat, lambda: backend.statuses(refs)),
            median_ms(args.repeat, lambda: [fetch_raw(raw_client, p, q) for p, q in STATUS_LISTS]),
            median_ms(args.repeat, lambda: statuses_from_bytes(status_bytes, refs, now)),
            sum(map(len, status_bytes)),
        )
        backend.close()
        raw_client.close()  # type: ignore[no-untyped-call]
    print(f"total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
