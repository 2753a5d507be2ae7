"""KubernetesBackend against the Kubernetes API emulator (tests/k8s_emulator), through the real client.

The emulator speaks the API's wire protocol on 127.0.0.1 with RBAC, impersonation, a scheduler
that writes the real Unschedulable messages, and a kubelet that fails pulls and crashes on demand.
Every write is checked in its request log: made as the person (Impersonate-User/-Group), never as
the bot; every status pass is checked to cost one pods LIST whatever the number of workloads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)
from backends.footprint import derive_footprint
from backends.k8s.backend import KubernetesBackend
from backends.k8s.settings import K8sSettings
from backends.protocol import Backend
from backends.types import Footprint, Identity, JobRef, JobRequest, JobState, PendingCode, QueueFilter
from tests.helpers.k8s_objects import occupy
from tests.k8s_emulator import BOT_USER, KubeEmulator, MessageStyle, RequestRecord

X = "\N{MULTIPLICATION SIGN}"
BOT_TOKEN = "bot-token"
A100 = "NVIDIA-A100-SXM4-80GB"
H100 = "NVIDIA-H100-80GB-HBM3"
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
ALICE = Identity(
    requester="U-ALICE", k8s_user="alice", k8s_groups=("ml", "gpu-users"), default_namespace="research"
)
BOB = Identity(requester="U-BOB", k8s_user="bob", default_namespace="research")
CAROL = Identity(requester="U-CAROL", k8s_user="carol", default_namespace="research")
ADMIN = Identity(requester="U-ADMIN", k8s_user="root-ops", is_admin=True)
WRITES = ("create", "update", "patch", "delete", "deletecollection")


def footprint(request: JobRequest) -> Footprint:
    """What the request holds on Kubernetes, with the shipped policy's defaults, as the engine derives it."""
    return derive_footprint(request, "k8s", default_minutes=60, longest_minutes=2880)


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.add_token(BOT_TOKEN, BOT_USER)
        emulator.allow_bot()
        for namespace in ("research", "vision", "other"):
            emulator.add_namespace(namespace)
        emulator.allow_edit("alice", "research")
        emulator.allow_edit("bob", "research")
        emulator.add_node("gpu-1", gpu_product=A100, gpus=8, gpu_memory_mib=81920, taints=[GPU_TAINT])
        emulator.add_node("gpu-2", gpu_product=A100, gpus=8, gpu_memory_mib=81920, taints=[GPU_TAINT])
        emulator.add_node("gpu-7", gpu_product=H100, gpus=4, gpu_memory_mib=81559, taints=[GPU_TAINT])
        emulator.add_node(
            "ts-1",
            gpu_product="Tesla-T4",
            sharing_strategy="time-slicing",
            shared_replicas=4,
            rename_shared=True,
            gpus=1,
            taints=[GPU_TAINT],
        )
        emulator.add_node("cpu-1")
        yield emulator


def factory(kube: KubeEmulator, token: str = BOT_TOKEN) -> Any:
    return lambda: ApiClient(kube.client_configuration(token))


@pytest.fixture
def backend(kube: KubeEmulator) -> Iterator[KubernetesBackend]:
    made = KubernetesBackend(K8sSettings(), api_client_factory=factory(kube))
    yield made
    made.close()


def writes(kube: KubeEmulator) -> list[RequestRecord]:
    return [r for r in kube.request_log if r.verb in WRITES]


def submitted(
    backend: KubernetesBackend, request: JobRequest, who: Identity = ALICE, rid: str = "r-1"
) -> JobRef:
    return backend.submit(backend.plan(footprint(request), who, rid))


def test_it_is_a_backend(backend: KubernetesBackend) -> None:
    typed: Backend = backend
    assert typed.name == "k8s"


def test_a_served_model_runs_and_every_write_is_made_as_the_person(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    plan = backend.plan(
        footprint(JobRequest(model="Qwen/Qwen2.5-7B-Instruct", gpus=1, gpu_type="a100")), ALICE, "r-1"
    )
    assert [m["kind"] for m in plan.manifests] == ["Deployment", "Service"]
    assert backend.validate(plan) == []
    assert kube.objects("apps/v1", "Deployment") == []  # the dry run created nothing
    dry = writes(kube)
    assert [(r.verb, r.resource, r.query.get("dryRun")) for r in dry] == [
        ("create", "deployments", "All"),
        ("create", "services", "All"),
    ]
    ref = backend.submit(plan)
    assert ref == JobRef(backend="k8s", job_id="research/qwen2-5-7b-instruct")
    (status,) = backend.statuses([ref])
    assert (status.state, status.raw_state, status.user) == (JobState.RUNNING, "1/1 ready", "alice")
    (pod,) = kube.pods("research")
    assert pod["spec"]["nodeName"] in ("gpu-1", "gpu-2")
    assert kube.get_object("v1", "Service", "qwen2-5-7b-instruct", "research") is not None
    all_writes = writes(kube)
    assert len(all_writes) == 4
    for record in all_writes:
        assert (record.user, record.impersonated_user) == (BOT_USER, "alice")
        assert record.impersonated_groups == ("ml", "gpu-users")  # one header line per group
        assert record.code in (200, 201)
    (reason,) = backend.explain(ref)
    assert reason.code is PendingCode.NOT_PENDING and "1/1 replicas are ready" in reason.sentence


def test_reads_are_made_as_the_bot(kube: KubeEmulator, backend: KubernetesBackend) -> None:
    ref = submitted(backend, JobRequest(gpus=1, command="nvidia-smi"))
    kube.clear_request_log()
    backend.statuses([ref])
    backend.capacity()
    backend.explain(ref)
    backend.queue(QueueFilter())
    assert kube.request_log and all(
        r.verb in ("list", "get") and r.impersonated_user is None for r in kube.request_log
    )


def test_a_job_pending_for_gpus_is_explained_with_alternatives(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    occupy(kube, "gpu-1", 6)
    occupy(kube, "gpu-2", 6)
    plan = backend.plan(
        footprint(JobRequest(gpus=4, gpu_type="a100", command="python train.py")), ALICE, "r-2"
    )
    (warning,) = backend.validate(plan)
    assert warning.startswith(f"it would not start right away: no node it may use has 4 {X} a100 free now")
    ref = backend.submit(plan)
    (status,) = backend.statuses([ref])
    assert (status.state, status.reason) == (JobState.PENDING, "Unschedulable")
    reasons = backend.explain(ref)
    gpu = reasons[0]
    assert gpu.code is PendingCode.INSUFFICIENT_GPU
    assert gpu.raw.startswith("0/5 nodes are available:")
    assert gpu.sentence.startswith(
        f"Job research/train-r2 waits: no node has 4 {X} a100 (nvidia.com/gpu) free"
    )
    assert gpu.alternatives == (
        f"2 nodes have 2 {X} a100 free now (nodes gpu-1, gpu-2): ask for 2 instead of 4",
        f"h100 ({H100}): 4 free on node gpu-7 — ask for h100 instead",
        "the cluster time-slices GPUs: 4 shared GPUs are free now (node ts-1): ask for a shared GPU if "
        "the work fits on part of one",
    )


@pytest.mark.parametrize("style", list(MessageStyle))
def test_a_job_pending_for_a_taint_names_the_taint_in_every_message_style(
    kube: KubeEmulator, backend: KubernetesBackend, style: MessageStyle
) -> None:
    kube.message_style = style
    kube.add_node(
        "gpu-5",
        gpu_product=A100,
        gpus=8,
        gpu_memory_mib=81920,
        taints=[GPU_TAINT, "dedicated=vision:NoSchedule"],
    )
    occupy(kube, "gpu-1", 8)
    occupy(kube, "gpu-2", 8)
    ref = submitted(backend, JobRequest(gpus=4, gpu_type="a100", command="python train.py"))
    reasons = {r.code: r for r in backend.explain(ref)}
    taint = reasons[PendingCode.UNTOLERATED_TAINT]
    assert "dedicated=vision" in taint.sentence
    assert "which the pod does not tolerate" in taint.sentence
    assert f"4 {X} a100 are free on gpu-5, reserved by dedicated=vision:NoSchedule" in taint.alternatives[0]
    assert PendingCode.INSUFFICIENT_GPU in reasons


def test_an_image_that_cannot_be_pulled(kube: KubeEmulator, backend: KubernetesBackend) -> None:
    kube.unpullable_images.add("ghcr.io/acme/nope:1")
    ref = submitted(backend, JobRequest(gpus=1, image="ghcr.io/acme/nope:1", command="run"))
    (status,) = backend.statuses([ref])
    assert (status.state, status.reason) == (JobState.PENDING, "ImagePullBackOff")
    (reason,) = backend.explain(ref)
    assert reason.code is PendingCode.IMAGE_PULL
    assert "its image ghcr.io/acme/nope:1 cannot be pulled (ImagePullBackOff)" in reason.sentence


def test_a_crashing_service_is_explained(kube: KubeEmulator, backend: KubernetesBackend) -> None:
    kube.crashing_images.add("ghcr.io/acme/crash:1")
    ref = submitted(backend, JobRequest(workload="service", gpus=1, image="ghcr.io/acme/crash:1"))
    (reason,) = backend.explain(ref)
    assert reason.code is PendingCode.CRASH_LOOP
    assert "keeps crashing" in reason.sentence and "--previous" in reason.sentence


def test_a_missing_token_secret_is_explained(kube: KubeEmulator) -> None:
    settings = K8sSettings(hf_token_secret="hf-token")
    backend = KubernetesBackend(settings, api_client_factory=factory(kube))
    ref = submitted(backend, JobRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpus=1))
    (reason,) = backend.explain(ref)
    assert 'CreateContainerConfigError): secret "hf-token" not found' in reason.sentence


def test_a_namespace_the_person_may_not_write_is_refused_by_rbac(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    plan = backend.plan(
        footprint(JobRequest(gpus=1, command="x", name="x", namespace="vision")), ALICE, "r-3"
    )
    with pytest.raises(PermissionDenied) as refused:
        backend.validate(plan)
    assert refused.value.message.startswith(
        "alice may not create Jobs x in namespace vision (dry run): the cluster's RBAC refused it"
    )
    with pytest.raises(PermissionDenied, match="alice may not create Jobs x in namespace vision: "):
        backend.submit(plan)
    assert kube.objects("batch/v1", "Job") == []
    assert all(r.code == 403 for r in writes(kube))


def test_a_failed_service_creation_undoes_the_deployment(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    # dave may create Deployments but not Services in research.
    kube.allow(
        "dave",
        ["create", "delete", "get", "list"],
        api_group="apps",
        resource="deployments",
        namespace="research",
    )
    dave = Identity(requester="U-DAVE", k8s_user="dave", default_namespace="research")
    with pytest.raises(
        PermissionDenied, match=r"Nothing was left running: Deployment research/api, created just before, was"
    ):
        submitted(
            backend,
            JobRequest(workload="service", gpus=1, image="ghcr.io/acme/api:1", port=80, name="api"),
            dave,
        )
    assert kube.objects("apps/v1", "Deployment") == []


def test_the_bot_without_impersonation_rights_is_a_configuration_error(kube: KubeEmulator) -> None:
    kube.add_token("weak", "system:serviceaccount:concierge:weak")
    kube.allow("system:serviceaccount:concierge:weak", ["get", "list", "watch"], api_group="*", resource="*")
    backend = KubernetesBackend(K8sSettings(), api_client_factory=factory(kube, "weak"))
    plan = backend.plan(footprint(JobRequest(gpus=1, command="x", name="x")), ALICE, "r-4")
    with pytest.raises(ConfigurationError, match="may not act as alice"):
        backend.validate(plan)


def test_statuses_of_many_workloads_cost_one_pods_list(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    refs = [
        submitted(backend, JobRequest(cpu_only=True, command="sleep 1", name=f"job-{i}"), rid=f"r-{i}")
        for i in range(12)
    ]
    api = JobRequest(workload="service", image="ghcr.io/acme/api:1", name="api", cpu_only=True)
    refs.append(submitted(backend, api))
    kube.clear_request_log()
    found = backend.statuses(refs)
    assert {s.ref.job_id for s in found} == {r.job_id for r in refs}
    reads = [(r.verb, r.resource, r.namespace) for r in kube.request_log]
    assert reads == [("list", "deployments", None), ("list", "jobs", None), ("list", "pods", None)]
    assert all(
        "app.kubernetes.io/managed-by=gpu-concierge" in r.query["labelSelector"] for r in kube.request_log
    )


def test_workloads_the_cluster_no_longer_has_are_left_out(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    ref = submitted(backend, JobRequest(gpus=1, command="x", name="x"))
    kube.delete_object("batch/v1", "Job", "x", "research")
    assert backend.statuses([ref, JobRef(backend="k8s", job_id="research/never")]) == []
    with pytest.raises(JobNotFound, match="no workload research/x of GPU Concierge is on the cluster"):
        backend.explain(ref)


def test_references_that_name_nothing_or_several_things(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    kube.allow_edit("alice", "vision")
    submitted(backend, JobRequest(cpu_only=True, command="x", name="twin"), rid="r-1")
    submitted(backend, JobRequest(cpu_only=True, command="x", name="twin", namespace="vision"), rid="r-2")
    with pytest.raises(
        RequestInvalid, match=r"twin names several workloads \(Job research/twin, Job vision/twin\)"
    ):
        backend.explain(JobRef(backend="k8s", job_id="twin"))
    assert backend.explain(JobRef(backend="k8s", job_id="vision/twin"))[0].code is PendingCode.NOT_PENDING
    kube.clear_request_log()
    with pytest.raises(JobNotFound):
        backend.cancel(JobRef(backend="k8s", job_id="research/x?labelSelector=a"), ALICE)
    assert kube.request_log == []  # not a Kubernetes name: nothing is asked
    assert len(backend.statuses([JobRef(backend="k8s", job_id="twin")])) == 2


def test_a_finished_job_is_completed(kube: KubeEmulator, backend: KubernetesBackend) -> None:
    ref = submitted(backend, JobRequest(gpus=1, command="x", name="x", time_limit_minutes=30))
    kube.complete_job("research", "x")
    (status,) = backend.statuses([ref])
    assert (status.state, status.time_limit_minutes) == (JobState.COMPLETED, 30)
    with pytest.raises(BackendRejected, match="has already ended"):
        backend.cancel(ref, ALICE)


def test_cancel_by_someone_else_is_refused_and_by_the_owner_deletes_workload_and_service(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    ref = submitted(
        backend, JobRequest(workload="service", gpus=1, image="ghcr.io/acme/api:1", port=8080, name="api")
    )
    kube.clear_request_log()
    with pytest.raises(
        PermissionDenied, match="Deployment research/api belongs to alice; only its owner or an admin"
    ):
        backend.cancel(ref, BOB)
    assert writes(kube) == []
    backend.cancel(JobRef(backend="k8s", job_id="api"), ALICE)  # a bare name is found by label
    deleted = writes(kube)
    assert [(r.verb, r.resource, r.name, r.impersonated_user) for r in deleted] == [
        ("delete", "deployments", "api", "alice"),
        ("delete", "services", "api", "alice"),
    ]
    assert kube.get_object("apps/v1", "Deployment", "api", "research") is None
    assert kube.get_object("v1", "Service", "api", "research") is None


def test_an_admin_the_cluster_refuses_gets_the_clusters_answer(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    ref = submitted(backend, JobRequest(gpus=1, command="x", name="x"))
    with pytest.raises(PermissionDenied, match="root-ops may not delete Jobs x in namespace research"):
        backend.cancel(ref, ADMIN)
    kube.allow_edit("root-ops", "research")
    backend.cancel(ref, ADMIN)
    assert kube.get_object("batch/v1", "Job", "x", "research") is None


def test_scale_a_service_as_its_owner(kube: KubeEmulator, backend: KubernetesBackend) -> None:
    ref = submitted(backend, JobRequest(workload="service", gpus=1, image="ghcr.io/acme/api:1", name="api"))
    with pytest.raises(PermissionDenied, match="belongs to alice"):
        backend.scale(ref, 3, BOB)
    kube.clear_request_log()
    backend.scale(ref, 2, ALICE)
    (patch,) = writes(kube)
    assert (patch.verb, patch.subresource, patch.impersonated_user) == ("patch", "scale", "alice")
    (status,) = backend.statuses([ref])
    assert (status.state, status.raw_state, status.nodes) == (JobState.RUNNING, "2/2 ready", 2)
    backend.scale(ref, 0, ALICE)
    assert backend.statuses([ref])[0].state is JobState.SUSPENDED
    job = submitted(backend, JobRequest(gpus=1, command="x", name="x"), rid="r-9")
    with pytest.raises(RequestInvalid, match="only services \\(Deployments\\) scale"):
        backend.scale(job, 2, ALICE)


def test_the_same_name_twice_is_refused_with_a_suggestion(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    plan = backend.plan(footprint(JobRequest(gpus=1, command="x", name="train")), ALICE, "r-1")
    backend.submit(plan)
    with pytest.raises(
        BackendRejected,
        match=r"Job train already exists in namespace research; choose another name \(e.g. `named train-2`\)",
    ):
        backend.submit(plan)


def test_a_manifest_the_api_finds_invalid_names_the_field(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    plan = backend.plan(footprint(JobRequest(gpus=1, command="x", name="x")), ALICE, "r-1")
    broken = dict(plan.manifests[0])
    broken["spec"] = {**broken["spec"], "backoffLimit": -1}
    with pytest.raises(
        RequestInvalid, match=r"the cluster refused the Job x \(dry run\): field spec.backoffLimit invalid"
    ):
        backend.validate(plan.model_copy(update={"manifests": (broken,)}))


def test_queue_lists_our_workloads_filtered_by_person_and_state(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    occupy(kube, "gpu-1", 8)
    occupy(kube, "gpu-2", 8)
    submitted(backend, JobRequest(gpus=1, gpu_type="a100", command="x", name="waits"), rid="r-1")
    submitted(backend, JobRequest(gpus=1, gpu_type="h100", command="x", name="runs"), rid="r-2")
    submitted(backend, JobRequest(cpu_only=True, command="x", name="bobs"), BOB, rid="r-3")
    everyone = backend.queue(QueueFilter())
    # Running first, then pending (newest first within a state).
    assert {s.name for s in everyone[:2]} == {"bobs", "runs"}
    assert all(s.state is JobState.RUNNING for s in everyone[:2])
    assert (everyone[2].name, everyone[2].state) == ("waits", JobState.PENDING)
    assert [s.name for s in backend.queue(QueueFilter(user="bob"))] == ["bobs"]
    assert [s.name for s in backend.queue(QueueFilter(user="U-ALICE", states=(JobState.PENDING,)))] == [
        "waits"
    ]
    assert [s.name for s in backend.queue(QueueFilter(job_ids=("research/runs",)))] == ["runs"]


def test_capacity_excludes_cordoned_and_not_ready_nodes(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    occupy(kube, "gpu-1", 3)
    kube.add_node("gpu-3", gpu_product=A100, gpus=8, unschedulable=True)
    kube.add_node("gpu-8", gpu_product=H100, gpus=4, ready=False)
    kube.add_node("mig-1", gpu_product=A100, mig={"3g.40gb": 2}, mig_strategy="mixed")
    kube.clear_request_log()
    pools = {p.pool: p for p in backend.capacity()}
    assert len(kube.request_log) == 2
    assert (pools[A100].total, pools[A100].free, pools[A100].unavailable_nodes) == (16, 13, ("gpu-3",))
    assert (pools[H100].total, pools[H100].unavailable_nodes) == (4, ("gpu-8",))
    assert pools[f"{A100}/mig-3g.40gb"].free == 2
    assert pools["Tesla-T4/shared"].total == 4


def test_a_kubeconfig_file_connects_the_bot(kube: KubeEmulator, tmp_path: Path) -> None:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", BOT_TOKEN)
    backend = KubernetesBackend(K8sSettings(kubeconfig=path))
    assert {p.pool for p in backend.capacity()} >= {A100, H100}


def test_an_unreachable_cluster_plans_from_configuration_but_submits_nothing(tmp_path: Path) -> None:
    with KubeEmulator() as gone:
        url = gone.url
    settings = K8sSettings(request_timeout_s=2)
    backend = KubernetesBackend(settings, api_client_factory=lambda: ApiClient(_configuration(url)))
    plan = backend.plan(footprint(JobRequest(gpus=2, gpu_type="a100", command="x")), ALICE, "r-1")
    assert any("the cluster could not be read" in w for w in plan.warnings)
    with pytest.raises(BackendUnavailable, match="the GPU type a100 was not matched"):
        backend.validate(plan)  # the engine shows this as a warning on the plan
    with pytest.raises(BackendUnavailable, match="the GPU type a100 was not matched"):
        backend.submit(plan)
    with pytest.raises(BackendUnavailable, match="could not be reached to list deployments"):
        backend.statuses([JobRef(backend="k8s", job_id="research/x")])


def _configuration(url: str) -> Any:
    from kubernetes.client import Configuration

    configuration = Configuration(host=url)
    configuration.retries = 0
    return configuration
