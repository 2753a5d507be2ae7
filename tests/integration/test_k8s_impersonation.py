"""The bot never impersonates the cluster's own identities, however the identity map was filled.

The Kubernetes API emulator grants every hostile subject below everything, cluster-wide, as a real
cluster does for `system:masters`, `kubeadm:cluster-admins`, nodes and controllers: a request made
as them would succeed. So the only thing between a bad mapping and a cluster-admin write is the
backend's refusal, checked here at each door into the cluster (plan, dry run, submit, cancel) with
the request log showing that no request ever carried such an Impersonate-User or -Group header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient

from backends.errors import PermissionDenied, RequestInvalid
from backends.footprint import derive_footprint
from backends.k8s.backend import KubernetesBackend
from backends.k8s.settings import K8sSettings
from backends.types import Identity, JobRequest
from tests.k8s_emulator import BOT_USER, KubeEmulator

BOT_TOKEN = "bot-token"
A100 = "NVIDIA-A100-SXM4-80GB"
ALICE = Identity(requester="U-ALICE", k8s_user="alice", default_namespace="research")
HOSTILE_USERS = (
    "system:admin",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:node:gpu-1",
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:apiserver",
    "System:Admin",
    "kubernetes-admin",
    "kubeadm:cluster-admins",
    " alice",
    "alice\r\nImpersonate-Group: system:masters",
)
HOSTILE_GROUPS = (
    "system:masters",
    "kubeadm:cluster-admins",
    "system:nodes",
    "system:serviceaccounts",
    "system:serviceaccounts:kube-system",
    "system:kube-controller-manager",
    "system:bootstrappers:kubeadm:default-node-token",
    "system:unauthenticated",
)
REQUEST = JobRequest(gpus=1, gpu_type="a100", command="nvidia-smi", namespace="research")


@pytest.fixture
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator() as emulator:
        emulator.add_token(BOT_TOKEN, BOT_USER)
        emulator.allow_bot()
        emulator.add_namespace("research")
        emulator.allow_edit("alice", "research")
        emulator.add_node("gpu-1", gpu_product=A100, gpus=8, gpu_memory_mib=81920)
        everything = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
        for user in HOSTILE_USERS:
            emulator.allow(user, everything, api_group="*", resource="*")
        for group in HOSTILE_GROUPS:
            emulator.allow(group, everything, api_group="*", resource="*", subject_kind="Group")
        yield emulator


@pytest.fixture
def backend(kube: KubeEmulator) -> Iterator[KubernetesBackend]:
    made = KubernetesBackend(
        K8sSettings(), api_client_factory=lambda: ApiClient(kube.client_configuration(BOT_TOKEN))
    )
    yield made
    made.close()


def hostile_identities() -> list[Any]:
    users = [pytest.param(Identity(requester="U-M", k8s_user=u), id=f"user:{u!r}") for u in HOSTILE_USERS]
    groups = [
        pytest.param(Identity(requester="U-M", k8s_user="mallory", k8s_groups=("ml", g)), id=f"group:{g}")
        for g in HOSTILE_GROUPS
    ]
    return users + groups


def footprint(request: JobRequest) -> Any:
    return derive_footprint(request, "k8s", default_minutes=60, longest_minutes=2880)


@pytest.mark.parametrize("hostile", hostile_identities())
def test_no_request_goes_out_as_a_cluster_identity(
    kube: KubeEmulator, backend: KubernetesBackend, hostile: Identity
) -> None:
    with pytest.raises(PermissionDenied, match="never acts as"):
        backend.plan(footprint(REQUEST), hostile, "r-1")
    # A plan made for alice and read back with another identity (a stored plan, a changed map)
    # is refused at every write too.
    smuggled = backend.plan(footprint(REQUEST), ALICE, "r-2").model_copy(update={"identity": hostile})
    with pytest.raises(PermissionDenied, match="never acts as"):
        backend.validate(smuggled)
    with pytest.raises(PermissionDenied, match="never acts as"):
        backend.submit(smuggled)
    assert kube.objects("batch/v1", "Job") == []
    # An admin mapped to such an identity cancels alice's job: refused before the DELETE goes out.
    alices = backend.submit(backend.plan(footprint(REQUEST), ALICE, "r-3"))
    with pytest.raises(PermissionDenied, match="never acts as"):
        backend.cancel(alices, hostile.model_copy(update={"is_admin": True}))
    assert len(kube.objects("batch/v1", "Job")) == 1
    assert all(r.impersonated_user in (None, "alice") for r in kube.request_log)
    assert all(not r.impersonated_groups for r in kube.request_log)


def test_plain_system_authenticated_is_allowed_and_alice_still_works(
    kube: KubeEmulator, backend: KubernetesBackend
) -> None:
    alice = ALICE.model_copy(update={"k8s_groups": ("system:authenticated",)})
    ref = backend.submit(backend.plan(footprint(REQUEST), alice, "r-5"))
    assert ref.job_id.startswith("research/")
    creates = [r for r in kube.request_log if r.verb == "create"]
    assert creates and all(
        (r.impersonated_user, r.impersonated_groups) == ("alice", ("system:authenticated",)) for r in creates
    )


@pytest.mark.parametrize(
    "model", ["--trust-remote-code", "--model=/etc", "/etc/passwd", "./weights", "../../root/.ssh", "-x/y"]
)
def test_a_model_id_that_is_an_option_or_a_path_creates_nothing(
    kube: KubeEmulator, backend: KubernetesBackend, model: str
) -> None:
    with pytest.raises(RequestInvalid, match="not a model id"):
        backend.plan(footprint(JobRequest(model=model, gpus=1, namespace="research")), ALICE, "r-4")
    assert [r for r in kube.request_log if r.verb == "create"] == []
