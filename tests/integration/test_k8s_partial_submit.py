"""A Kubernetes submit that fails part-way, through the real backend against the API emulator.

A model server is a Deployment and then a Service. When the Service is refused, the Deployment
is deleted again as the same person, or, when that delete fails too, the error names what is left
and how to remove it. A create whose answer never came is looked up before anything is claimed.
People's rights are RBAC rules in the emulator; "no answer" is the emulator answering after the
client's timeout (`answer_late`), with the request already done.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient

from backends.errors import BackendUnavailable, ConciergeError, PermissionDenied
from backends.footprint import derive_footprint
from backends.k8s.backend import KubernetesBackend
from backends.k8s.settings import K8sSettings
from backends.types import Identity, JobRef, JobRequest, Plan, QueueFilter
from tests.k8s_emulator import BOT_USER, KubeEmulator

BOT_TOKEN = "bot-token"
A100 = "NVIDIA-A100-SXM4-80GB"
GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
SERVE = JobRequest(model="Qwen/Qwen2.5-7B-Instruct", gpus=1, gpu_type="a100", namespace="research")
SERVED = "qwen2-5-7b-instruct"
TRAIN = JobRequest(gpus=1, gpu_type="a100", command="python train.py", name="train", namespace="research")
# dave may create and delete Deployments but not create Services; erin may not delete either.
DAVE = Identity(requester="U-DAVE", k8s_user="dave", default_namespace="research")
ERIN = Identity(requester="U-ERIN", k8s_user="erin", default_namespace="research")
ADMIN = Identity(requester="U-ADMIN", k8s_user="root-ops", is_admin=True)
SERVICE_REFUSED = (  # a create's URL has no name, so the apiserver's text names none
    "dave may not create Services {name} in namespace research: the cluster's RBAC refused it "
    '(services is forbidden: User "dave" cannot create resource "services" in API group "" '
    'in the namespace "research"). Ask the namespace\'s admins for a Role that allows it, or use a '
    "namespace where you may."
)


def _cluster(kube: KubeEmulator) -> None:
    kube.add_namespace("research")
    kube.add_node("gpu-1", gpu_product=A100, gpus=8, gpu_memory_mib=81920, taints=[GPU_TAINT])
    kube.allow_edit("root-ops", "research")
    apps = {"api_group": "apps", "resource": "deployments", "namespace": "research"}
    kube.allow("dave", ["create", "delete", "get", "list"], **apps)
    kube.allow("erin", ["create", "get", "list"], **apps)
    kube.allow("erin", ["create", "get", "list"], api_group="batch", resource="jobs", namespace="research")


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.add_token(BOT_TOKEN, BOT_USER)
        emulator.allow_bot()
        _cluster(emulator)
        yield emulator


def backend_for(kube: KubeEmulator, **settings: Any) -> KubernetesBackend:
    return KubernetesBackend(
        K8sSettings(**settings), api_client_factory=lambda: ApiClient(kube.client_configuration(BOT_TOKEN))
    )


@pytest.fixture
def backend(kube: KubeEmulator) -> Iterator[KubernetesBackend]:
    made = backend_for(kube)
    yield made
    made.close()


def planned(backend: KubernetesBackend, request: JobRequest, who: Identity) -> Plan:
    footprint = derive_footprint(request, "k8s", default_minutes=60, longest_minutes=None)
    return backend.plan(footprint, who, "r-1")


def refused(backend: KubernetesBackend, request: JobRequest, who: Identity) -> ConciergeError:
    with pytest.raises(ConciergeError) as failed:
        backend.submit(planned(backend, request, who))
    assert failed.value.args == (failed.value.message,)
    return failed.value


def workloads_left(kube: KubeEmulator) -> dict[str, list[str]]:
    kinds = {
        "Deployment": "apps/v1",
        "ReplicaSet": "apps/v1",
        "Job": "batch/v1",
        "Service": "v1",
        "Pod": "v1",
    }
    return {
        kind: sorted(o["metadata"]["name"] for o in kube.objects(version, kind, "research"))
        for kind, version in kinds.items()
        if kube.objects(version, kind, "research")
    }


def test_a_refused_service_deletes_the_deployment_again_as_the_person(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    error = refused(backend, SERVE, DAVE)
    assert isinstance(error, PermissionDenied)
    assert error.message == (
        SERVICE_REFUSED.format(name=SERVED)
        + f" Nothing was left running: Deployment research/{SERVED}, created just before, was deleted again."
    )
    assert workloads_left(kube) == {}  # its ReplicaSet and pods went with it
    assert backend.queue(QueueFilter()) == []  # the bot's LISTs find nothing either
    (delete,) = [r for r in kube.request_log if r.verb == "delete"]
    assert (delete.resource, delete.name, delete.impersonated_user, delete.code) == (
        "deployments",
        SERVED,
        "dave",
        200,
    )


def test_an_undo_the_person_may_not_do_names_what_is_left_and_how_to_remove_it(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    error = refused(backend, SERVE, ERIN)
    assert isinstance(error, PermissionDenied)  # the class of the first failure, not the undo's
    assert error.message == (
        SERVICE_REFUSED.format(name=SERVED).replace("dave", "erin")
        + f" Undoing the submit failed, so Deployment research/{SERVED} is left on the cluster; its pods "
        f"hold GPUs until removed. Deployment research/{SERVED}: erin may not delete Deployments "
        f'{SERVED} in namespace research: the cluster\'s RBAC refused it (deployments.apps "{SERVED}" '
        'is forbidden: User "erin" cannot delete resource "deployments" in API group "apps" in the '
        'namespace "research"). Ask the namespace\'s admins for a Role that allows it, or use a '
        f"namespace where you may. To remove it: `kubectl -n research delete deployment {SERVED}` or "
        f"`concierge cancel research/{SERVED}` (by someone who may delete it, such as an admin)."
    )
    left = workloads_left(kube)
    assert left["Deployment"] == [SERVED] and "Service" not in left and len(left["Pod"]) == 1
    (status,) = backend.queue(QueueFilter())
    assert (status.ref.job_id, status.user) == (f"research/{SERVED}", "erin")
    backend.cancel(JobRef(backend="k8s", job_id=f"research/{SERVED}"), ADMIN)  # what it says works
    assert workloads_left(kube) == {}


def test_an_undo_whose_answer_never_came_is_looked_up_before_claiming_anything(
    kube: KubeEmulator,
) -> None:
    kube.answer_late("delete", "deployments", 1.0)
    backend = backend_for(kube, request_timeout_s=0.3)
    error = refused(backend, SERVE, DAVE)
    assert error.message.endswith(
        f"Nothing was left running: Deployment research/{SERVED}, created just before, was deleted again."
    )
    assert workloads_left(kube) == {}
    backend.close()


def test_a_job_created_without_an_answer_is_found_and_not_created_twice(kube: KubeEmulator) -> None:
    kube.answer_late("create", "jobs", 1.0)
    backend = backend_for(kube, request_timeout_s=0.3)
    ref = backend.submit(planned(backend, TRAIN, ERIN))
    assert ref == JobRef(backend="k8s", job_id="research/train")
    (job,) = kube.objects("batch/v1", "Job", "research")
    assert job["metadata"]["labels"]["gpu-concierge/request-id"] == "r-1"
    # Sent once, then looked up as the bot (the late answer is logged when it is finally sent).
    assert sorted((r.verb, r.impersonated_user or "") for r in kube.request_log if r.resource == "jobs") == [
        ("create", "erin"),
        ("get", ""),
    ]
    backend.close()


def test_a_job_whose_creation_cannot_be_known_is_reported_as_possibly_left() -> None:
    with KubeEmulator() as kube:
        kube.add_token(BOT_TOKEN, BOT_USER)
        # This bot may list but not get one object by name, so the lookup fails as well.
        kube.allow(BOT_USER, ["list", "watch"], api_group="*", resource="*")
        kube.allow(BOT_USER, ["impersonate"], resource=["users", "groups", "serviceaccounts"])
        _cluster(kube)
        kube.answer_late("create", "jobs", 1.0)
        backend = backend_for(kube, request_timeout_s=0.3)
        error = refused(backend, TRAIN, ERIN)
        backend.close()
        assert isinstance(error, BackendUnavailable)
        assert error.message.startswith(
            f"the Kubernetes API at {kube.url} did not answer in time to create Jobs train in namespace "
            "research (",
        )
        assert error.message.endswith(
            "; it may have been done all the same. Job research/train may be left on the cluster; its "
            "pods hold GPUs until removed. Job research/train: the cluster did not answer whether it was "
            "created, nor a lookup right after. To remove it: `kubectl -n research delete job train` or "
            "`concierge cancel research/train` (by someone who may delete it, such as an admin)."
        )
        assert [j["metadata"]["name"] for j in kube.objects("batch/v1", "Job", "research")] == ["train"]


def test_a_deployment_created_without_an_answer_is_undone_when_its_service_is_refused(
    kube: KubeEmulator,
) -> None:
    kube.answer_late("create", "deployments", 1.0)
    backend = backend_for(kube, request_timeout_s=0.3)
    error = refused(backend, SERVE, DAVE)
    backend.close()
    assert isinstance(error, PermissionDenied)  # the Service's refusal, not the Deployment's timeout
    assert error.message == SERVICE_REFUSED.format(name=SERVED) + (
        f" Nothing was left running: Deployment research/{SERVED}, created just before, was deleted again."
    )
    assert workloads_left(kube) == {}
