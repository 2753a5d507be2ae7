"""The Kubernetes API emulator, driven through the unchanged `kubernetes` client as the backend will.

Each test arranges a small cluster in Python and then speaks only HTTP through CoreV1Api, AppsV1Api,
BatchV1Api and watch.Watch, so a response the real client cannot deserialise fails here first.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.helpers.k8s_objects import GPU_TOLERATION, node_affinity
from tests.k8s_emulator import BOT_USER, KubeEmulator, MessageStyle
from tests.k8s_emulator.patches import strategic_merge_patch
from tests.k8s_emulator.scheduler import Verdict, unschedulable_message
from tests.k8s_emulator.selectors import labels_match, parse_label_selector
from tests.k8s_emulator.store import Store

T = TypeVar("T")
JsonObject = dict[str, Any]

ADMIN = "admin-token"
BOT = "bot-token"
ALICE = "alice-token"
BOB = "bob-token"
NAMESPACE = "research"


def manifest(obj: JsonObject) -> Any:
    """The client takes plain dicts as bodies at run time, though its stubs name the model classes."""
    return obj


def watch_pods(core: client.CoreV1Api, **arguments: Any) -> Iterator[tuple[watch.Watch, JsonObject]]:
    """watch.Watch().stream over the namespace's pods (the watch module is untyped)."""
    watcher = watch.Watch()  # type: ignore[no-untyped-call]
    stream = watcher.stream(core.list_namespaced_pod, NAMESPACE, **arguments)  # type: ignore[no-untyped-call]
    for event in stream:
        yield watcher, event


def must(value: T | None) -> T:
    assert value is not None
    return value


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.add_token(ADMIN, "kubernetes-admin", ["system:masters"])
        emulator.add_token(BOT, BOT_USER)
        emulator.add_token(ALICE, "alice", ["ml-team"])
        emulator.add_token(BOB, "bob")
        emulator.allow_bot()
        emulator.add_namespace(NAMESPACE)
        yield emulator


@pytest.fixture
def connect(kube: KubeEmulator) -> Iterator[Callable[..., client.ApiClient]]:
    """ApiClients for a token, optionally impersonating (one ApiClient per identity)."""
    opened: list[client.ApiClient] = []

    def open_client(
        token: str = ADMIN, *, user: str | None = None, group: str | None = None
    ) -> client.ApiClient:
        api = client.ApiClient(kube.client_configuration(token))
        if user:
            api.set_default_header("Impersonate-User", user)  # type: ignore[no-untyped-call]
        if group:
            api.set_default_header("Impersonate-Group", group)  # type: ignore[no-untyped-call]
        opened.append(api)
        return api

    yield open_client
    for api in opened:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def core(connect: Callable[..., client.ApiClient]) -> client.CoreV1Api:
    return client.CoreV1Api(connect())


@pytest.fixture
def apps(connect: Callable[..., client.ApiClient]) -> client.AppsV1Api:
    return client.AppsV1Api(connect())


def deployment(
    name: str,
    *,
    gpus: int = 1,
    replicas: int = 1,
    image: str = "vllm/vllm-openai:v0.6.3",
    resource: str = "nvidia.com/gpu",
    tolerations: tuple[JsonObject, ...] = (GPU_TOLERATION,),
    affinity: JsonObject | None = None,
    node_selector: dict[str, str] | None = None,
) -> Any:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "gpu-concierge"}
    pod_spec: JsonObject = {
        "containers": [{"name": "main", "image": image, "resources": {"limits": {resource: str(gpus)}}}],
        "tolerations": list(tolerations),
    }
    if affinity:
        pod_spec["affinity"] = affinity
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def pods_of(core: client.CoreV1Api, name: str) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(NAMESPACE, label_selector=f"app.kubernetes.io/name={name}").items)


def scheduled_condition(pod: client.V1Pod) -> client.V1PodCondition:
    conditions = must(must(pod.status).conditions)
    return next(c for c in conditions if c.type == "PodScheduled")


def refused(call: Callable[[], object]) -> tuple[int, JsonObject]:
    """The status code and Status body of a request the API server refuses."""
    with pytest.raises(ApiException) as caught:
        call()
    body: JsonObject = json.loads(must(caught.value.body))
    return caught.value.status, body


def batch_job(name: str, container: JsonObject, *, restart: str | None = "Never", **spec: Any) -> Any:
    """A batch/v1 Job of one container."""
    pod_spec: JsonObject = {"containers": [container]} | ({"restartPolicy": restart} if restart else {})
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {**spec, "template": {"spec": pod_spec}},
    }


# ---- workloads and the scheduler -----------------------------------------------------------------


def test_a_deployment_becomes_a_replicaset_and_running_pods_bound_to_gpu_nodes(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpu_product="NVIDIA-A100-SXM4-80GB", gpus=8, taints=["nvidia.com/gpu:NoSchedule"])
    kube.add_node("cpu-1")

    created = apps.create_namespaced_deployment(NAMESPACE, deployment("web", gpus=2, replicas=3))

    pods = pods_of(core, "web")
    assert len(pods) == 3
    replicasets = apps.list_namespaced_replica_set(NAMESPACE).items
    assert len(replicasets) == 1
    replicaset = replicasets[0]
    rs_meta = must(replicaset.metadata)
    pod_hash = must(rs_meta.labels)["pod-template-hash"]
    assert rs_meta.name == f"web-{pod_hash}"
    assert must(rs_meta.owner_references)[0].uid == must(created.metadata).uid
    for pod in pods:
        meta, spec, status = must(pod.metadata), must(pod.spec), must(pod.status)
        assert must(meta.name).startswith(f"web-{pod_hash}-")
        assert must(meta.labels)["app.kubernetes.io/managed-by"] == "gpu-concierge"
        owner = must(meta.owner_references)[0]
        assert (owner.kind, owner.name, owner.controller) == ("ReplicaSet", rs_meta.name, True)
        assert spec.node_name == "gpu-1"
        assert must(spec.containers[0].resources).requests == {"nvidia.com/gpu": "2"}
        assert status.phase == "Running"
        assert scheduled_condition(pod).status == "True"
        container = must(status.container_statuses)[0]
        assert container.ready and must(container.state).running is not None
    rollout = must(apps.read_namespaced_deployment("web", NAMESPACE).status)
    assert (rollout.replicas, rollout.ready_replicas, rollout.available_replicas) == (3, 3, 3)
    scheduled = core.list_namespaced_event(NAMESPACE, field_selector="reason=Scheduled").items
    assert {e.message for e in scheduled} == {
        f"Successfully assigned {NAMESPACE}/{must(p.metadata).name} to gpu-1" for p in pods
    }


def _three_node_cluster(kube: KubeEmulator) -> None:
    kube.add_node("gpu-a", gpu_product="NVIDIA-A100-SXM4-80GB", gpus=4, taints=["nvidia.com/gpu:NoSchedule"])
    kube.add_node("infer-1", gpu_product="NVIDIA-L40S", gpus=4, taints=["dedicated=infer:NoSchedule"])
    kube.add_node("infer-2", gpu_product="NVIDIA-L40S", gpus=4, taints=["dedicated=infer:NoSchedule"])


def test_too_many_gpus_leaves_the_pod_unschedulable_with_the_schedulers_exact_message_and_event(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    _three_node_cluster(kube)

    apps.create_namespaced_deployment(NAMESPACE, deployment("big", gpus=8))

    (pod,) = pods_of(core, "big")
    expected = (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "2 node(s) had untolerated taint {dedicated: infer}. "
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )
    condition = scheduled_condition(pod)
    assert (condition.status, condition.reason, condition.message) == ("False", "Unschedulable", expected)
    assert must(pod.status).phase == "Pending" and must(pod.spec).node_name is None
    events = core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={must(pod.metadata).name},involvedObject.kind=Pod"
    ).items
    failed = [e for e in events if e.reason == "FailedScheduling"]
    assert len(failed) == 1
    assert (failed[0].type, failed[0].message, must(failed[0].source).component) == (
        "Warning",
        expected,
        "default-scheduler",
    )


def test_a_pod_without_the_gpu_toleration_is_kept_off_tainted_nodes(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    _three_node_cluster(kube)

    apps.create_namespaced_deployment(NAMESPACE, deployment("plain", gpus=1, tolerations=()))

    (pod,) = pods_of(core, "plain")
    assert scheduled_condition(pod).message == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: }, "
        "2 node(s) had untolerated taint {dedicated: infer}. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_cordoned_and_not_ready_nodes_are_reported_and_uncordoning_schedules_the_pod(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=4, gpu_product="NVIDIA-H100-80GB-HBM3")
    kube.add_node("gpu-2", gpus=4, gpu_product="NVIDIA-H100-80GB-HBM3", ready=False)
    core.patch_node("gpu-1", {"spec": {"unschedulable": True}})
    taints = must(must(core.read_node("gpu-1").spec).taints)
    assert [(t.key, t.effect) for t in taints] == [("node.kubernetes.io/unschedulable", "NoSchedule")]

    apps.create_namespaced_deployment(NAMESPACE, deployment("train", gpus=2))

    (pod,) = pods_of(core, "train")
    assert scheduled_condition(pod).message == (
        "0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) were unschedulable. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )
    core.patch_node("gpu-1", {"spec": {"unschedulable": None}})
    (pod,) = pods_of(core, "train")
    assert must(pod.spec).node_name == "gpu-1" and must(pod.status).phase == "Running"
    assert must(core.read_node("gpu-1").spec).taints is None


def test_node_affinity_on_gpu_product_and_memory_and_the_mismatch_reason(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("a100-40", gpus=4, gpu_product="NVIDIA-A100-PCIE-40GB", gpu_memory_mib=40960)
    kube.add_node("a100-80", gpus=4, gpu_product="A100-SXM4-80GB", gpu_memory_mib=81920)
    kube.add_node("h100", gpus=4, gpu_product="NVIDIA-H100-80GB-HBM3", gpu_memory_mib=81920)
    affinity = node_affinity(
        {
            "key": "nvidia.com/gpu.product",
            "operator": "In",
            "values": ["NVIDIA-A100-PCIE-40GB", "A100-SXM4-80GB"],
        },
        {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": ["50000"]},
    )

    apps.create_namespaced_deployment(NAMESPACE, deployment("fits", gpus=2, affinity=affinity))
    apps.create_namespaced_deployment(
        NAMESPACE, deployment("nowhere", gpus=1, node_selector={"nvidia.com/gpu.product": "Tesla-V100"})
    )

    (fits,) = pods_of(core, "fits")
    assert must(fits.spec).node_name == "a100-80"
    (nowhere,) = pods_of(core, "nowhere")
    assert scheduled_condition(nowhere).message == (
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )


def test_mig_and_time_sliced_nodes_advertise_their_resources_and_take_matching_pods(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("mig-1", gpus=6, gpu_product="NVIDIA-A100-SXM4-80GB", mig={"1g.10gb": 7, "3g.40gb": 2})
    kube.add_node(
        "mig-single", gpu_product="NVIDIA-A100-SXM4-40GB", gpus=8, mig={"1g.5gb": 56}, mig_strategy="single"
    )
    kube.add_node("shared", gpus=2, gpu_product="Tesla-T4", shared_replicas=4, rename_shared=True)
    kube.add_node("shared-plain", gpus=1, gpu_product="Tesla-T4", shared_replicas=4)

    mig = must(core.read_node("mig-1").status)
    assert must(mig.allocatable)["nvidia.com/mig-1g.10gb"] == "7"
    assert must(mig.allocatable)["nvidia.com/gpu"] == "6"
    assert must(must(core.read_node("mig-1").metadata).labels)["nvidia.com/mig.strategy"] == "mixed"
    single = core.read_node("mig-single")
    assert must(must(single.status).allocatable)["nvidia.com/gpu"] == "56"
    assert must(must(single.metadata).labels)["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"
    shared = core.read_node("shared")
    assert must(must(shared.status).allocatable)["nvidia.com/gpu.shared"] == "8"
    assert "nvidia.com/gpu" not in must(must(shared.status).allocatable)
    labels = must(must(shared.metadata).labels)
    assert (labels["nvidia.com/gpu.sharing-strategy"], labels["nvidia.com/gpu.replicas"]) == (
        "time-slicing",
        "4",
    )
    plain_labels = must(must(core.read_node("shared-plain").metadata).labels)
    assert plain_labels["nvidia.com/gpu.product"] == "Tesla-T4-SHARED"

    apps.create_namespaced_deployment(
        NAMESPACE, deployment("slice", gpus=3, resource="nvidia.com/mig-1g.10gb")
    )
    apps.create_namespaced_deployment(
        NAMESPACE, deployment("share", gpus=1, resource="nvidia.com/gpu.shared")
    )

    assert must(pods_of(core, "slice")[0].spec).node_name == "mig-1"
    assert must(pods_of(core, "share")[0].spec).node_name == "shared"


def test_image_pull_failures_crash_loops_and_missing_secrets_show_the_kubelets_reasons(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=8, gpu_product="NVIDIA-L40S")
    kube.unpullable_images.add("ghcr.io/nope/model:1")
    kube.crashing_images.add("ghcr.io/oops/server:2")
    needs_secret = deployment("needs-token", gpus=1)
    needs_secret["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
    ]

    apps.create_namespaced_deployment(NAMESPACE, deployment("pull", gpus=1, image="ghcr.io/nope/model:1"))
    apps.create_namespaced_deployment(NAMESPACE, deployment("crash", gpus=1, image="ghcr.io/oops/server:2"))
    apps.create_namespaced_deployment(NAMESPACE, needs_secret)

    (pull,) = pods_of(core, "pull")
    waiting = must(must(must(pull.status).container_statuses)[0].state).waiting
    assert must(pull.status).phase == "Pending" and must(pull.spec).node_name == "gpu-1"
    assert (must(waiting).reason, must(waiting).message) == (
        "ImagePullBackOff",
        'Back-off pulling image "ghcr.io/nope/model:1"',
    )
    (crash,) = pods_of(core, "crash")
    crashed = must(must(crash.status).container_statuses)[0]
    assert must(crash.status).phase == "Running"
    assert must(must(crashed.state).waiting).reason == "CrashLoopBackOff" and crashed.restart_count > 0
    (config_error,) = pods_of(core, "needs-token")
    waiting = must(must(must(config_error.status).container_statuses)[0].state).waiting
    assert (must(waiting).reason, must(waiting).message) == (
        "CreateContainerConfigError",
        'secret "hf-token" not found',
    )
    kubelet_events = core.list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.name={must(pull.metadata).name},type=Warning"
    ).items
    assert "Error: ImagePullBackOff" in {e.message for e in kubelet_events}


def test_a_job_runs_one_pod_and_completes(kube: KubeEmulator, core: client.CoreV1Api, connect: Any) -> None:
    kube.add_node("gpu-1", gpus=8, gpu_product="NVIDIA-H100-80GB-HBM3")
    batch = client.BatchV1Api(connect())
    gpus = {"limits": {"nvidia.com/gpu": "4"}}
    batch.create_namespaced_job(
        NAMESPACE, batch_job("train", {"name": "t", "image": "pytorch:2", "resources": gpus}, backoffLimit=0)
    )

    (pod,) = core.list_namespaced_pod(NAMESPACE, label_selector="batch.kubernetes.io/job-name=train").items
    assert must(pod.status).phase == "Running" and must(pod.spec).node_name == "gpu-1"
    assert must(must(batch.read_namespaced_job("train", NAMESPACE).status).active) == 1
    kube.complete_job(NAMESPACE, "train")
    status = must(batch.read_namespaced_job("train", NAMESPACE).status)
    assert status.succeeded == 1 and not status.active
    assert "Complete" in {c.type for c in must(status.conditions) if c.status == "True"}


def test_a_job_with_restart_policy_always_is_invalid(connect: Any) -> None:
    batch = client.BatchV1Api(connect())
    status, body = refused(
        lambda: batch.create_namespaced_job(
            NAMESPACE, batch_job("bad", {"name": "t", "image": "x:1"}, restart=None)
        )
    )
    assert status == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Always": supported values: "OnFailure", "Never"',
            "field": "spec.template.spec.restartPolicy",
        }
    ]


# ---- deleting, scaling, replacing ------------------------------------------------------------------


def test_deleting_a_deployment_removes_its_pods_and_the_freed_gpus_go_to_a_pending_pod(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=4, gpu_product="NVIDIA-A100-SXM4-80GB")
    apps.create_namespaced_deployment(NAMESPACE, deployment("first", gpus=4))
    apps.create_namespaced_deployment(NAMESPACE, deployment("second", gpus=2))
    (waiting,) = pods_of(core, "second")
    assert scheduled_condition(waiting).reason == "Unschedulable"

    answer = apps.delete_namespaced_deployment("first", NAMESPACE, propagation_policy="Background")

    assert isinstance(answer, dict) and answer["status"] == "Success"
    assert pods_of(core, "first") == []
    assert [must(rs.metadata).name for rs in apps.list_namespaced_replica_set(NAMESPACE).items] == [
        must(must(waiting.metadata).owner_references)[0].name
    ]
    (running,) = pods_of(core, "second")
    assert must(running.spec).node_name == "gpu-1" and must(running.status).phase == "Running"
    assert scheduled_condition(running).status == "True"


def test_orphan_propagation_keeps_dependents_and_jobs_orphan_by_default_with_a_warning(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api, connect: Any
) -> None:
    kube.add_node("gpu-1", gpus=8, gpu_product="NVIDIA-A100-SXM4-80GB")
    apps.create_namespaced_deployment(NAMESPACE, deployment("kept", gpus=1))
    apps.delete_namespaced_deployment("kept", NAMESPACE, propagation_policy="Orphan")
    (replicaset,) = apps.list_namespaced_replica_set(NAMESPACE).items
    assert must(replicaset.metadata).owner_references is None
    assert len(pods_of(core, "kept")) == 1

    batch = client.BatchV1Api(connect())
    batch.create_namespaced_job(NAMESPACE, batch_job("j", {"name": "c", "image": "x:1"}))
    _, _, headers = batch.delete_namespaced_job_with_http_info("j", NAMESPACE)
    assert "child pods are preserved by default" in headers["Warning"]
    assert len(core.list_namespaced_pod(NAMESPACE, label_selector="job-name=j").items) == 1
    batch.create_namespaced_job(NAMESPACE, batch_job("k", {"name": "c", "image": "x:1"}))
    batch.delete_namespaced_job("k", NAMESPACE, propagation_policy="Background")
    assert core.list_namespaced_pod(NAMESPACE, label_selector="job-name=k").items == []


def test_the_scale_subresource_and_both_patch_types_change_the_replica_count(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=8, gpu_product="NVIDIA-A100-SXM4-80GB")
    apps.create_namespaced_deployment(NAMESPACE, deployment("svc", gpus=1, replicas=2))

    scale = apps.read_namespaced_deployment_scale("svc", NAMESPACE)
    assert must(scale.spec).replicas == 2
    assert must(scale.status).selector == "app.kubernetes.io/name=svc"
    scaled = apps.patch_namespaced_deployment_scale("svc", NAMESPACE, {"spec": {"replicas": 4}})
    assert must(scaled.spec).replicas == 4 and len(pods_of(core, "svc")) == 4

    apps.patch_namespaced_deployment("svc", NAMESPACE, {"spec": {"replicas": 1}})  # strategic merge
    assert len(pods_of(core, "svc")) == 1
    apps.patch_namespaced_deployment(
        "svc", NAMESPACE, {"spec": {"replicas": 3}}, _content_type="application/merge-patch+json"
    )
    assert len(pods_of(core, "svc")) == 3
    apps.patch_namespaced_deployment(
        "svc", NAMESPACE, [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    )
    assert pods_of(core, "svc") == []
    assert kube.request_log[-2].path == f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/svc"


def test_replacing_a_deployments_template_rolls_to_a_new_replicaset(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=8, gpu_product="NVIDIA-A100-SXM4-80GB")
    apps.create_namespaced_deployment(NAMESPACE, deployment("svc", gpus=1, replicas=2))
    current = apps.read_namespaced_deployment("svc", NAMESPACE)
    body = current.to_dict(serialize=True)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:v0.7.0"

    replaced = apps.replace_namespaced_deployment("svc", NAMESPACE, manifest(body))

    assert must(replaced.metadata).generation == 2
    replicasets = {
        must(rs.metadata).name: must(must(rs.spec).replicas)
        for rs in apps.list_namespaced_replica_set(NAMESPACE).items
    }
    assert sorted(replicasets.values()) == [0, 2]
    images = {must(p.spec).containers[0].image for p in pods_of(core, "svc")}
    assert images == {"vllm/vllm-openai:v0.7.0"}
    stale = {
        **body,
        "metadata": {**body["metadata"], "resourceVersion": must(current.metadata).resource_version},
    }
    status, body = refused(lambda: apps.replace_namespaced_deployment("svc", NAMESPACE, manifest(stale)))
    assert status == 409 and body["reason"] == "Conflict"


# ---- errors -------------------------------------------------------------------------------------------


def test_an_invalid_name_and_a_missing_image_are_422_with_causes(apps: client.AppsV1Api) -> None:
    status, body = refused(lambda: apps.create_namespaced_deployment(NAMESPACE, deployment("Bad_Name")))
    assert status == 422 and body["reason"] == "Invalid" and body["code"] == 422
    detail = (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
        "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
        "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert (
        body["message"]
        == f'Deployment.apps "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {detail}'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": f'Invalid value: "Bad_Name": {detail}',
            "field": "metadata.name",
        }
    ]
    assert (body["details"]["group"], body["details"]["kind"]) == ("apps", "Deployment")

    no_image = deployment("no-image")
    del no_image["spec"]["template"]["spec"]["containers"][0]["image"]
    _, body = refused(lambda: apps.create_namespaced_deployment(NAMESPACE, no_image))
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.template.spec.containers[0].image",
        }
    ]


def test_not_found_already_exists_and_missing_namespace(apps: client.AppsV1Api, kube: KubeEmulator) -> None:
    kube.add_node("gpu-1", gpus=1)
    status, body = refused(lambda: apps.read_namespaced_deployment("nope", NAMESPACE))
    assert (status, body["message"]) == (404, 'deployments.apps "nope" not found')
    apps.create_namespaced_deployment(NAMESPACE, deployment("twice"))
    status, body = refused(lambda: apps.create_namespaced_deployment(NAMESPACE, deployment("twice")))
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert body["message"] == 'deployments.apps "twice" already exists'
    status, body = refused(lambda: apps.create_namespaced_deployment("elsewhere", deployment("x")))
    assert (status, body["message"]) == (404, 'namespaces "elsewhere" not found')


def test_extended_resources_must_have_equal_requests_and_limits(apps: client.AppsV1Api) -> None:
    uneven = deployment("uneven", gpus=2)
    uneven["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] = {"nvidia.com/gpu": "1"}
    _, body = refused(lambda: apps.create_namespaced_deployment(NAMESPACE, uneven))
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "1": must be equal to nvidia.com/gpu limit of 2',
            "field": "spec.template.spec.containers[0].resources.requests",
        }
    ]


# ---- identity: RBAC and impersonation ------------------------------------------------------------------


def test_rbac_denials_use_the_apiservers_exact_words(connect: Any, kube: KubeEmulator) -> None:
    alice_apps = client.AppsV1Api(connect(ALICE))
    alice_core = client.CoreV1Api(connect(ALICE))

    status, body = refused(lambda: alice_apps.create_namespaced_deployment(NAMESPACE, deployment("web")))
    assert status == 403
    assert body["message"] == (
        'deployments.apps is forbidden: User "alice" cannot create resource "deployments" '
        'in API group "apps" in the namespace "research"'
    )
    assert body["details"] == {"group": "apps", "kind": "deployments"}
    assert refused(lambda: alice_apps.read_namespaced_deployment("web", NAMESPACE))[1]["message"] == (
        'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" '
        'in API group "apps" in the namespace "research"'
    )
    assert refused(alice_core.list_node)[1]["message"] == (
        'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope'
    )
    two = {"spec": {"replicas": 2}}
    _, body = refused(lambda: alice_apps.patch_namespaced_deployment_scale("web", NAMESPACE, two))
    assert body["message"] == (
        'deployments.apps "web" is forbidden: User "alice" cannot patch resource "deployments/scale" '
        'in API group "apps" in the namespace "research"'
    )

    kube.allow(
        "ml-team",
        ["create", "get"],
        api_group="apps",
        resource="deployments",
        namespace=NAMESPACE,
        subject_kind="Group",
    )
    kube.add_node("gpu-1", gpus=1)
    alice_apps.create_namespaced_deployment(NAMESPACE, deployment("web"))
    assert must(alice_apps.read_namespaced_deployment("web", NAMESPACE).metadata).name == "web"


def test_impersonation_runs_the_request_as_the_person(connect: Any, kube: KubeEmulator) -> None:
    kube.add_node("gpu-1", gpus=4)
    kube.allow_edit("alice", NAMESPACE)
    kube.add_namespace("other")
    as_alice = client.AppsV1Api(connect(BOT, user="alice"))

    as_alice.create_namespaced_deployment(NAMESPACE, deployment("mine"), dry_run="All")
    as_alice.create_namespaced_deployment(NAMESPACE, deployment("mine"))
    _, body = refused(lambda: as_alice.create_namespaced_deployment("other", deployment("mine")))

    assert body["message"] == (
        'deployments.apps is forbidden: User "alice" cannot create resource "deployments" '
        'in API group "apps" in the namespace "other"'
    )
    creates = [r for r in kube.request_log if r.verb == "create"]
    assert [(r.user, r.acting_user, r.namespace, r.code, r.query.get("dryRun")) for r in creates] == [
        (BOT_USER, "alice", NAMESPACE, 201, "All"),
        (BOT_USER, "alice", NAMESPACE, 201, None),
        (BOT_USER, "alice", "other", 403, None),
    ]


def test_impersonated_groups_count_and_impersonating_needs_permission(
    connect: Any, kube: KubeEmulator
) -> None:
    kube.allow("gpu-users", ["list"], resource="pods", namespace=NAMESPACE, subject_kind="Group")
    as_carol = client.CoreV1Api(connect(BOT, user="carol", group="gpu-users"))
    assert as_carol.list_namespaced_pod(NAMESPACE).items == []
    assert list(kube.request_log[-1].impersonated_groups) == ["gpu-users"]

    bob_as_alice = client.CoreV1Api(connect(BOB, user="alice"))
    status, body = refused(lambda: bob_as_alice.list_namespaced_pod(NAMESPACE))
    assert status == 403
    assert body["message"] == (
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" '
        'in API group "" at the cluster scope'
    )

    # Two Impersonate-Group lines (which the python client cannot send) are two groups.
    kube.allow("auditors", ["list"], resource="pods", namespace=NAMESPACE, subject_kind="Group")
    parts = urlsplit(kube.url)
    connection = http.client.HTTPConnection(must(parts.hostname), must(parts.port), timeout=10)
    connection.putrequest("GET", f"/api/v1/namespaces/{NAMESPACE}/pods")
    for name, value in (
        ("Authorization", f"Bearer {BOT}"),
        ("Impersonate-User", "dave"),
        ("Impersonate-Group", "nobody"),
        ("Impersonate-Group", "auditors"),
    ):
        connection.putheader(name, value)
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()
    assert list(kube.request_log[-1].impersonated_groups) == ["nobody", "auditors"]


def test_unknown_tokens_are_unauthorized(connect: Any) -> None:
    status, body = refused(client.CoreV1Api(connect("no-such-token")).list_node)
    assert (status, body["reason"]) == (401, "Unauthorized")


def test_self_subject_access_review_answers_for_the_impersonated_person(
    connect: Any, kube: KubeEmulator
) -> None:
    kube.allow_edit("alice", NAMESPACE)
    reviews = client.AuthorizationV1Api(connect(BOT, user="alice"))

    def allowed(namespace: str) -> bool:
        review: Any = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": "create",
                    "group": "apps",
                    "resource": "deployments",
                }
            },
        }
        return bool(must(reviews.create_self_subject_access_review(review).status).allowed)

    assert allowed(NAMESPACE) and not allowed("other")


# ---- dry run ---------------------------------------------------------------------------------------------


def test_dry_run_validates_and_admits_but_persists_nothing(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api, connect: Any
) -> None:
    kube.add_node("gpu-1", gpus=4)
    before = core.list_namespaced_pod(NAMESPACE).metadata
    dry = apps.create_namespaced_deployment(NAMESPACE, deployment("trial", replicas=2), dry_run="All")

    assert must(dry.metadata).name == "trial" and must(dry.metadata).uid
    assert must(dry.spec).revision_history_limit == 10  # defaulted as if real
    assert apps.list_namespaced_deployment(NAMESPACE).items == []
    assert core.list_namespaced_pod(NAMESPACE).items == []
    assert (
        must(core.list_namespaced_pod(NAMESPACE).metadata).resource_version == must(before).resource_version
    )
    status, _ = refused(
        lambda: apps.create_namespaced_deployment(NAMESPACE, deployment("Bad"), dry_run="All")
    )
    assert status == 422
    as_alice = client.AppsV1Api(connect(BOT, user="alice"))
    trial = deployment("trial")
    status, _ = refused(lambda: as_alice.create_namespaced_deployment(NAMESPACE, trial, dry_run="All"))
    assert status == 403

    apps.create_namespaced_deployment(NAMESPACE, deployment("real"))
    apps.patch_namespaced_deployment("real", NAMESPACE, {"spec": {"replicas": 3}}, dry_run="All")
    apps.delete_namespaced_deployment("real", NAMESPACE, dry_run="All")
    assert must(apps.read_namespaced_deployment("real", NAMESPACE).spec).replicas == 1
    assert len(pods_of(core, "real")) == 1


# ---- selectors, lists, watches ---------------------------------------------------------------------------


def test_label_and_field_selectors_on_lists(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.add_node("gpu-1", gpus=2)
    for name, gpus in (("a", 1), ("b", 1), ("c", 4)):
        body = deployment(name, gpus=gpus)
        body["spec"]["template"]["metadata"]["labels"]["tier"] = "gold" if name == "a" else "silver"
        apps.create_namespaced_deployment(NAMESPACE, body)

    def names(label_selector: str | None = None, field_selector: str | None = None) -> set[str]:
        pods = core.list_namespaced_pod(
            NAMESPACE, label_selector=label_selector, field_selector=field_selector
        ).items
        return {must(must(p.metadata).labels)["app.kubernetes.io/name"] for p in pods}

    assert names(label_selector="tier=gold") == {"a"}
    assert names(label_selector="tier!=gold") == {"b", "c"}
    assert names(label_selector="app.kubernetes.io/name in (a, c)") == {"a", "c"}
    assert names(label_selector="app.kubernetes.io/name notin (a,c),tier") == {"b"}
    assert names(label_selector="!tier") == set()
    assert names(field_selector="spec.nodeName=gpu-1") == {"a", "b"}
    assert names(field_selector="status.phase=Pending") == {"c"}
    assert names(field_selector="status.phase!=Pending,spec.nodeName=gpu-1") == {"a", "b"}
    pod_name = must(pods_of(core, "c")[0].metadata).name
    assert names(field_selector=f"metadata.name={pod_name}") == {"c"}
    everywhere = core.list_pod_for_all_namespaces(label_selector="tier=silver").items
    assert len(everywhere) == 2
    assert refused(lambda: core.list_namespaced_pod(NAMESPACE, field_selector="spec.priority=1"))[0] == 400


def test_lists_page_with_limit_and_continue(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    kube.put_objects(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i:02d}", "namespace": NAMESPACE}}
        for i in range(5)
    )
    first = core.list_namespaced_secret(NAMESPACE, limit=2)
    second = core.list_namespaced_secret(NAMESPACE, limit=2, _continue=must(first.metadata).var_continue)
    third = core.list_namespaced_secret(NAMESPACE, limit=2, _continue=must(second.metadata).var_continue)
    pages = [[must(s.metadata).name for s in page.items] for page in (first, second, third)]
    assert pages == [["s00", "s01"], ["s02", "s03"], ["s04"]]
    assert must(first.metadata).remaining_item_count == 3 and not must(third.metadata).var_continue


def test_a_watch_replays_changes_after_a_resource_version_and_follows_selectors(
    kube: KubeEmulator, core: client.CoreV1Api
) -> None:
    kube.add_node("gpu-1", gpus=2)
    pod: Any = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "w", "labels": {"watched": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "x:1"}]},
    }
    start = must(core.list_namespaced_pod(NAMESPACE).metadata).resource_version
    core.create_namespaced_pod(NAMESPACE, pod)
    core.patch_namespaced_pod("w", NAMESPACE, {"metadata": {"labels": {"extra": "1"}}})
    core.patch_namespaced_pod("w", NAMESPACE, {"metadata": {"labels": {"watched": "no"}}})
    core.delete_namespaced_pod("w", NAMESPACE)

    def stream(**arguments: Any) -> list[tuple[str, str]]:
        seen = []
        for watcher, event in watch_pods(core, timeout_seconds=5, **arguments):
            seen.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                watcher.stop()  # type: ignore[no-untyped-call]
        return seen

    everything = stream(resource_version=start)
    assert everything[0] == ("ADDED", "w") and everything[-1] == ("DELETED", "w")
    assert {kind for kind, _ in everything[1:-1]} == {"MODIFIED"}
    assert stream(resource_version=start, label_selector="watched=yes") == [
        ("ADDED", "w"),
        ("MODIFIED", "w"),  # bound and started
        ("MODIFIED", "w"),  # label "extra"
        ("DELETED", "w"),  # no longer matches the selector
    ]


def test_a_live_watch_sees_a_new_pod(kube: KubeEmulator, core: client.CoreV1Api) -> None:
    kube.add_node("gpu-1", gpus=2)
    start = must(core.list_namespaced_pod(NAMESPACE).metadata).resource_version
    seen: list[tuple[str, str | None]] = []

    def follow() -> None:
        for watcher, event in watch_pods(core, resource_version=start, timeout_seconds=10):
            seen.append((event["type"], event["object"].status.phase))
            if event["object"].status.phase == "Running":
                watcher.stop()  # type: ignore[no-untyped-call]

    thread = threading.Thread(target=follow)
    thread.start()
    deadline = time.monotonic() + 5
    while not any(r.verb == "watch" for r in kube.request_log) and time.monotonic() < deadline:
        time.sleep(0.01)
    kube.put_object(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "late", "namespace": NAMESPACE},
            "spec": {"containers": [{"name": "c", "image": "x:1"}]},
        }
    )
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert seen == [("ADDED", "Pending"), ("MODIFIED", "Running")]


def test_a_watch_from_before_the_retained_history_gets_410_expired() -> None:
    from tests.k8s_emulator import resources
    from tests.k8s_emulator.errors import ApiError

    store = Store(history=3)
    for i in range(5):
        store.put(resources.SECRETS, {"metadata": {"name": f"s{i}", "namespace": "n"}})
    assert [c.revision for c in store.changes_after(2)] == [3, 4, 5]
    with pytest.raises(ApiError) as caught:
        store.changes_after(1)
    assert caught.value.code == 410 and caught.value.body["reason"] == "Expired"


def test_the_request_log_shows_one_list_per_poll_and_who_asked(kube: KubeEmulator, connect: Any) -> None:
    bot = client.CoreV1Api(connect(BOT))
    kube.clear_request_log()
    for _ in range(3):
        bot.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/managed-by=gpu-concierge")
    assert [(r.verb, r.resource, r.namespace, r.user, r.impersonated_user) for r in kube.request_log] == [
        ("list", "pods", None, BOT_USER, None)
    ] * 3
    assert kube.request_log[0].query["labelSelector"] == "app.kubernetes.io/managed-by=gpu-concierge"


def test_a_kubeconfig_file_reaches_the_emulator(kube: KubeEmulator, tmp_path: Path) -> None:
    kube.add_node("gpu-1", gpus=1)
    path = kube.write_kubeconfig(tmp_path / "config", BOT, namespace=NAMESPACE)
    api = config.new_client_from_config(config_file=str(path))  # type: ignore[no-untyped-call]
    try:
        assert [must(n.metadata).name for n in client.CoreV1Api(api).list_node().items] == ["gpu-1"]
    finally:
        api.close()


# ---- message formats and pure parts ----------------------------------------------------------------------


def test_the_histogram_sorts_as_go_sorts_strings_count_included() -> None:
    """ "10 …" sorts before "2 …", and "2 Insufficient memory" before "3 Insufficient cpu"."""
    verdicts = (
        [Verdict(("node(s) had untolerated taint {dedicated: infer}",), False)] * 10
        + [Verdict(("Insufficient memory", "Insufficient cpu"), True)] * 2
        + [Verdict(("Insufficient cpu",), True)]
    )
    message = unschedulable_message({"spec": {}}, verdicts, MessageStyle.CURRENT)
    assert message == (
        "0/13 nodes are available: 10 node(s) had untolerated taint {dedicated: infer}, "
        "2 Insufficient memory, 3 Insufficient cpu. preemption: 0/13 nodes are available: "
        "10 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod."
    )
    never = unschedulable_message({"spec": {"preemptionPolicy": "Never"}}, verdicts[:1], MessageStyle.CURRENT)
    assert never.endswith("preemption: not eligible due to preemptionPolicy=Never.")


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        (
            MessageStyle.DOUBLE_DOT,
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
            "{dedicated: infer}. preemption: 0/2 nodes are available: 1 No preemption victims found for "
            "incoming pod, 1 Preemption is not helpful for scheduling..",
        ),
        (
            MessageStyle.NO_PREEMPTION,
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, "
            "1 node(s) had taint {dedicated: infer}, that the pod didn't tolerate.",
        ),
        (
            MessageStyle.UNTOLERATED_TAINTS,
            "0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint(s). "
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, "
            "1 Preemption is not helpful for scheduling.",
        ),
    ],
)
def test_older_and_newer_message_styles(
    style: MessageStyle, expected: str, kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    kube.message_style = style
    kube.add_node("gpu-a", gpus=2)
    kube.add_node("infer-1", gpus=8, taints=["dedicated=infer:NoSchedule"])
    apps.create_namespaced_deployment(NAMESPACE, deployment("big", gpus=4))
    assert scheduled_condition(pods_of(core, "big")[0]).message == expected


def test_label_selector_grammar() -> None:
    selector = parse_label_selector("a=1, b != 2, c in (x, y), d notin (z), e, !f, g>3")
    assert labels_match(selector, {"a": "1", "c": "y", "e": "", "g": "4"})
    assert not labels_match(selector, {"a": "1", "c": "y", "e": "", "g": "3"})
    assert not labels_match(selector, {"a": "1", "c": "y", "e": "", "g": "4", "f": "on"})
    assert not labels_match(selector, {"a": "1", "b": "2", "c": "y", "e": "", "g": "4"})


def test_strategic_merge_merges_containers_by_name() -> None:
    target = {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}
    patched = strategic_merge_patch(target, {"containers": [{"name": "b", "image": "y:2"}]})
    assert patched == {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}]}


def test_a_thousand_nodes_and_twenty_thousand_pods_list_in_well_under_a_few_seconds(
    kube: KubeEmulator, connect: Any
) -> None:
    kube.put_objects(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"gpu-{i:04d}",
                "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            },
            "status": {"allocatable": {"nvidia.com/gpu": "8", "cpu": "64", "memory": "512Gi", "pods": "110"}},
        }
        for i in range(1000)
    )
    kube.put_objects(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"p-{i:05d}", "namespace": NAMESPACE, "labels": {"app": f"a{i % 50}"}},
            "spec": {
                "nodeName": f"gpu-{i % 1000:04d}",
                "containers": [
                    {"name": "c", "image": "x:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
                ],
            },
        }
        for i in range(20000)
    )
    core = client.CoreV1Api(connect(BOT))

    started = time.perf_counter()
    raw = cast(Any, core.list_pod_for_all_namespaces(_preload_content=False)).read()
    nodes = cast(Any, core.list_node(_preload_content=False)).read()
    elapsed = time.perf_counter() - started

    assert len(json.loads(raw)["items"]) == 20000 and len(json.loads(nodes)["items"]) == 1000
    assert elapsed < 3.0, f"full LISTs took {elapsed:.2f} s"


def test_every_object_the_emulator_serves_is_valid_against_the_official_schema(
    kube: KubeEmulator, core: client.CoreV1Api, apps: client.AppsV1Api, connect: Any
) -> None:
    kube.add_node("mig", gpus=2, gpu_product="NVIDIA-A100-SXM4-80GB", mig={"1g.10gb": 7}, ready=False)
    kube.add_node("cordoned", gpus=4, unschedulable=True, taints=["dedicated=infer:NoSchedule"])
    kube.add_node("gpu-1", gpus=4, gpu_product="NVIDIA-H100-80GB-HBM3", shared_replicas=2, rename_shared=True)
    kube.crashing_images.add("crash:1")
    body = deployment("svc", gpus=1, replicas=2, resource="nvidia.com/gpu.shared")
    body["spec"]["template"]["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox:1"}]
    apps.create_namespaced_deployment(NAMESPACE, body)
    apps.create_namespaced_deployment(NAMESPACE, deployment("waits", gpus=8))
    client.BatchV1Api(connect()).create_namespaced_job(
        NAMESPACE, batch_job("fails", {"name": "c", "image": "crash:1"}, backoffLimit=1)
    )
    core.create_namespaced_service(
        NAMESPACE,
        manifest(
            {"metadata": {"name": "svc"}, "spec": {"selector": {"app": "svc"}, "ports": [{"port": 8000}]}}
        ),
    )
    core.create_namespaced_persistent_volume_claim(
        NAMESPACE,
        manifest(
            {
                "metadata": {"name": "hf-cache"},
                "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}}},
            }
        ),
    )
    core.create_namespaced_secret(
        NAMESPACE, manifest({"metadata": {"name": "hf-token"}, "stringData": {"token": "x"}})
    )

    served = [
        obj
        for api_version, kind in [
            ("v1", "Namespace"),
            ("v1", "Node"),
            ("v1", "Pod"),
            ("v1", "Service"),
            ("v1", "Event"),
            ("v1", "Secret"),
            ("v1", "PersistentVolumeClaim"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "ReplicaSet"),
            ("batch/v1", "Job"),
        ]
        for obj in kube.objects(api_version, kind)
    ]
    assert len(served) > 20
    for obj in served:
        kubernetes_validate.validate(obj, "1.30", strict=True)
