"""Manifests from requests: validated against the official schemas (kubernetes-validate, strict),
with GPU resources and node affinity decided from what the cluster's nodes advertise."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from backends.errors import RequestInvalid
from backends.footprint import GpusNotStated, derive_footprint, describe_footprint, gpus_per_unit
from backends.k8s.capacity import node_gpus
from backends.k8s.facts import ClusterFacts, facts_from_configuration, facts_from_nodes
from backends.k8s.manifests import (
    MANAGED_BY_LABEL,
    NAME_LABEL,
    REQUEST_LABEL,
    REQUESTER_ANNOTATION,
    UNRESOLVED_ANNOTATION,
    build_manifests,
)
from backends.k8s.objects import Node
from backends.k8s.settings import K8sSettings
from backends.types import Footprint, Identity, JobRequest
from tests.helpers.k8s_objects import decoded, node

REQUEST_ID = "0f8e9a2c-1b2d-4e5f-8a9b-0c1d2e3f4a5b"
ALICE = Identity(requester="U-ALICE", k8s_user="alice", k8s_groups=("ml",), default_namespace="research")
SETTINGS = K8sSettings()
SCHEMA_VERSIONS = (SETTINGS.kubernetes_version, kubernetes_validate.latest_version())
A100_SXM = "NVIDIA-A100-SXM4-80GB"
A100_PCIE = "NVIDIA-A100-PCIE-40GB"
H100 = "NVIDIA-H100-80GB-HBM3"


def facts_of(*nodes: dict[str, Any]) -> ClusterFacts:
    return facts_from_nodes(node_gpus(n) for n in decoded(list(nodes), Node))


PLAIN = facts_of(
    node("gpu-1", product=A100_SXM, gpus=8, memory_mib=81920),
    node("gpu-2", product=A100_PCIE, gpus=4, memory_mib=40960),
    node("gpu-7", product=H100, gpus=4, memory_mib=81559),
)
MIXED_MIG = facts_of(
    node("gpu-1", product=A100_SXM, gpus=8, memory_mib=81920),
    node("mig-1", product=A100_SXM, mig={"3g.40gb": 2, "1g.10gb": 4}, mig_strategy="mixed"),
)
SINGLE_MIG = facts_of(
    node("gpu-1", product=A100_SXM, gpus=8, memory_mib=81920),
    node("mig-s", product="NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", gpus=7, mig_strategy="single"),
)
RENAMED_SHARING = facts_of(
    node("gpu-1", product=A100_SXM, gpus=8),
    node("ts-1", product="Tesla-T4", shared=8, sharing="time-slicing"),
)
UNRENAMED_SHARING = facts_of(
    node("gpu-1", product=A100_SXM, gpus=8),
    node("ts-2", product="Tesla-T4-SHARED", gpus=16, sharing="time-slicing"),
)


def footprint(request: JobRequest) -> Footprint:
    """What the request holds on Kubernetes; a request here that names no GPU is read as the CPU
    job it would be if the person said so (these tests are about the manifests' shape)."""
    try:
        gpus_per_unit(request)
    except GpusNotStated:
        request = request.model_copy(update={"cpu_only": True})
    return derive_footprint(request, "k8s", default_minutes=60, longest_minutes=2880)


def build(request: JobRequest, facts: ClusterFacts = PLAIN, settings: K8sSettings = SETTINGS) -> Any:
    planned = build_manifests(footprint(request), ALICE, REQUEST_ID, settings, facts)
    for manifest in planned.manifests:
        for version in SCHEMA_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(
                    f"{manifest['kind']} is not valid for Kubernetes {version}: {e.message} at {e.path}"
                )
    return planned


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def expressions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    affinity = pod_spec(manifest).get("affinity")
    if not affinity:
        return []
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 1
    found: list[dict[str, Any]] = terms[0]["matchExpressions"]
    return found


def limits(manifest: dict[str, Any]) -> dict[str, str]:
    resources = pod_spec(manifest)["containers"][0].get("resources", {})
    assert (
        resources.get("limits", {}).items()
        >= {k: v for k, v in resources.get("requests", {}).items() if k.startswith("nvidia.com/")}.items()
    )
    found: dict[str, str] = resources.get("limits", {})
    return found


# -- batch -------------------------------------------------------------------------------------

TRICKY = "python train.py --msg \"a: b\n- c\" && echo $HOME 'x' # {not: yaml}\nexit 0"


def test_a_batch_request_becomes_a_job_with_its_command_as_one_argument() -> None:
    request = JobRequest(
        gpus=4, gpu_type="a100", time_limit_minutes=240, command=TRICKY, cpus=16, memory_gb=64
    )
    planned = build(request)
    (job,) = planned.manifests
    assert (job["apiVersion"], job["kind"], planned.kind) == ("batch/v1", "Job", "Job")
    assert job["metadata"]["namespace"] == "research" and planned.namespace == "research"
    assert job["spec"]["activeDeadlineSeconds"] == 240 * 60
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 86_400
    main = pod_spec(job)["containers"][0]
    assert main["command"] == ["/bin/sh", "-c", TRICKY]
    assert main["image"] == SETTINGS.default_image
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert main["resources"]["requests"] == {"nvidia.com/gpu": "4", "cpu": "16", "memory": "64Gi"}
    assert main["resources"]["limits"] == {"nvidia.com/gpu": "4", "memory": "64Gi"}
    assert pod_spec(job)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_labels_and_annotations_say_it_is_ours_and_whose() -> None:
    (job,) = build(JobRequest(gpus=1, command="nvidia-smi")).manifests
    labels = job["metadata"]["labels"]
    assert labels[MANAGED_BY_LABEL] == "gpu-concierge"
    assert labels[NAME_LABEL] == job["metadata"]["name"] == "nvidia-smi-0f8e9a2c"
    assert labels[REQUEST_LABEL] == REQUEST_ID
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    annotations = job["metadata"]["annotations"]
    assert annotations[REQUESTER_ANNOTATION] == "U-ALICE"
    assert annotations["gpu-concierge/k8s-user"] == "alice"


def test_a_gpu_type_becomes_affinity_on_the_products_the_cluster_has() -> None:
    (job,) = build(JobRequest(gpus=2, gpu_type="a100", command="x")).manifests
    assert expressions(job) == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": [A100_PCIE, A100_SXM]}
    ]


def test_a_gpu_type_the_cluster_lacks_is_refused_with_what_it_has() -> None:
    with pytest.raises(RequestInvalid) as refused:
        build(JobRequest(gpus=1, gpu_type="v100", command="x"))
    assert "no v100 GPUs" in refused.value.message
    assert f"{H100} (h100)" in refused.value.message and f"{A100_SXM} (a100)" in refused.value.message


def test_gpu_memory_becomes_a_floor_below_the_marketing_figure() -> None:
    (job,) = build(JobRequest(gpus=1, gpu_memory_gb=80, command="x")).manifests
    floor = next(e for e in expressions(job) if e["key"] == "nvidia.com/gpu.memory")
    assert floor == {"key": "nvidia.com/gpu.memory", "operator": "Gt", "values": [str(int(80 * 1024 * 0.9))]}
    assert 81559 > int(floor["values"][0]) > 40960  # an "80 GB" H100 fits, a 40 GB A100 does not


def test_more_memory_than_any_gpu_has_is_refused() -> None:
    with pytest.raises(
        RequestInvalid, match=r"no GPU in the cluster has 141 GB: they have 40 GB \(NVIDIA-A100-PCIE"
    ):
        build(JobRequest(gpus=1, gpu_memory_gb=141, command="x"))


def test_more_gpus_than_one_node_has_is_refused() -> None:
    with pytest.raises(RequestInvalid, match=r"no node has 16 a100s: the most on one node is 8"):
        build(JobRequest(gpus=16, gpu_type="a100", command="x"))


def test_several_nodes_become_an_indexed_job() -> None:
    planned = build(JobRequest(gpus=8, nodes=2, command="torchrun train.py"))
    (job,) = planned.manifests
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (2, 2)
    assert job["spec"]["completionMode"] == "Indexed"
    assert any("JOB_COMPLETION_INDEX" in w for w in planned.warnings)


def test_site_runtime_and_priority_classes_are_set_for_gpu_pods() -> None:
    settings = K8sSettings(runtime_class_name="nvidia", priority_class_name="research-high")
    (job,) = build(JobRequest(gpus=1, command="x"), settings=settings).manifests
    assert pod_spec(job)["runtimeClassName"] == "nvidia"
    assert pod_spec(job)["priorityClassName"] == "research-high"
    (cpu_job,) = build(JobRequest(command="x"), settings=settings).manifests
    assert "runtimeClassName" not in pod_spec(cpu_job) and "tolerations" not in pod_spec(cpu_job)


def test_no_gpu_asked_means_no_gpu_resource() -> None:
    (job,) = build(JobRequest(command="python prep.py")).manifests
    assert "resources" not in pod_spec(job)["containers"][0]
    (zero,) = build(JobRequest(gpus=0, command="python prep.py")).manifests
    assert "resources" not in pod_spec(zero)["containers"][0]


# -- services and model serving ----------------------------------------------------------------


def test_a_service_with_a_port_becomes_a_deployment_and_a_service() -> None:
    request = JobRequest(workload="service", gpus=1, image="ghcr.io/acme/api:1.2", port=8080, replicas=3)
    deployment, service = build(request).manifests
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": 8080, "protocol": "TCP"}]
    assert pod_spec(deployment)["restartPolicy"] == "Always"
    assert "command" not in pod_spec(deployment)["containers"][0]  # the image's own entrypoint


def test_a_service_without_a_port_has_no_service_object() -> None:
    planned = build(JobRequest(workload="service", gpus=1, image="ghcr.io/acme/worker:1"))
    assert [m["kind"] for m in planned.manifests] == ["Deployment"]


def test_a_model_is_served_by_vllm_with_probe_shm_cache_and_token() -> None:
    settings = K8sSettings(hf_cache_pvc="hf-cache", hf_token_secret="hf-token")
    request = JobRequest(model="meta-llama/Llama-3.1-8B-Instruct", gpus=2, gpu_type="h100")
    deployment, service = build(request, settings=settings).manifests
    server = pod_spec(deployment)["containers"][0]
    assert server["image"] == "vllm/vllm-openai:v0.11.0"
    assert server["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert server["args"][:2] == ["--model", "meta-llama/Llama-3.1-8B-Instruct"]
    assert server["args"][-2:] == ["--tensor-parallel-size", "2"]
    assert server["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["ports"][0]["containerPort"] == 8000
    assert {"name": "dshm", "mountPath": "/dev/shm"} in server["volumeMounts"]
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory"}
    assert volumes["hf-cache"]["persistentVolumeClaim"] == {"claimName": "hf-cache"}
    token = next(e for e in server["env"] if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}
    assert service["spec"]["ports"][0]["port"] == 8000
    assert limits(deployment) == {"nvidia.com/gpu": "2"}


def test_without_cache_or_token_settings_none_is_mounted() -> None:
    deployment, _ = build(JobRequest(model="Qwen/Qwen2.5-7B-Instruct", gpus=1)).manifests
    server = pod_spec(deployment)["containers"][0]
    assert [v["name"] for v in pod_spec(deployment)["volumes"]] == ["dshm"]
    assert all(e["name"] != "HF_TOKEN" for e in server["env"])


def test_a_model_with_no_gpu_asked_gets_one_and_says_so() -> None:
    request = JobRequest(model="Qwen/Qwen2.5-7B-Instruct")
    planned = build(request)
    assert limits(planned.manifests[0]) == {"nvidia.com/gpu": "1"}
    # The preview's summary line (the footprint) says it: 1 GPU, judged as 1.
    assert describe_footprint(footprint(request)).startswith("1 × GPU")


@pytest.mark.parametrize(
    "request_",
    [
        JobRequest(model="bigscience/bloom-560m", gpus=4, command="serve it with tgi please"),
        JobRequest(
            model="bigscience/bloom-560m", gpus=4, image="ghcr.io/huggingface/text-generation-inference:3.3.4"
        ),
    ],
)
def test_tgi_is_picked_when_named(request_: JobRequest) -> None:
    deployment, _ = build(request_).manifests
    server = pod_spec(deployment)["containers"][0]
    assert server["name"] == "tgi"
    assert "text-generation-inference" in server["image"]
    if request_.command is None:
        assert server["args"][:2] == ["--model-id", "bigscience/bloom-560m"]
        assert server["args"][-2:] == ["--num-shard", "4"]
    else:
        assert server["command"] == ["/bin/sh", "-c", request_.command]


def test_a_model_id_with_spaces_is_refused() -> None:
    with pytest.raises(RequestInvalid, match="not a model id"):
        build(JobRequest(model="meta llama", gpus=1))


# -- MIG and sharing ---------------------------------------------------------------------------


def test_a_mig_slice_uses_the_mixed_strategy_resource() -> None:
    (job,) = build(JobRequest(mig_profile="3g.40gb", command="x"), MIXED_MIG).manifests
    assert limits(job) == {"nvidia.com/mig-3g.40gb": "1"}
    assert expressions(job) == []


def test_a_mig_slice_under_the_single_strategy_pins_the_product() -> None:
    (job,) = build(JobRequest(mig_profile="1g.5gb", command="x"), SINGLE_MIG).manifests
    assert limits(job) == {"nvidia.com/gpu": "1"}
    assert expressions(job) == [
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"]}
    ]


def test_whole_gpus_keep_off_single_strategy_mig_nodes() -> None:
    (job,) = build(JobRequest(gpus=1, command="x"), SINGLE_MIG).manifests
    assert {"key": "nvidia.com/mig.strategy", "operator": "NotIn", "values": ["single"]} in expressions(job)


def test_a_mig_profile_nobody_offers_is_refused_with_the_offered_ones() -> None:
    with pytest.raises(RequestInvalid, match=r"no MIG slice 2g.20gb: it offers MIG slices 1g.10gb, 3g.40gb"):
        build(JobRequest(mig_profile="2g.20gb", command="x"), MIXED_MIG)
    with pytest.raises(RequestInvalid, match="no node has MIG enabled"):
        build(JobRequest(mig_profile="1g.10gb", command="x"), PLAIN)


def test_a_shared_gpu_uses_the_renamed_resource_when_advertised() -> None:
    (job,) = build(JobRequest(shared=True, command="x"), RENAMED_SHARING).manifests
    assert limits(job) == {"nvidia.com/gpu.shared": "1"}


def test_a_shared_gpu_without_renaming_goes_to_time_sliced_nodes() -> None:
    (job,) = build(JobRequest(shared=True, command="x"), UNRENAMED_SHARING).manifests
    assert limits(job) == {"nvidia.com/gpu": "1"}
    assert expressions(job) == [
        {"key": "nvidia.com/gpu.sharing-strategy", "operator": "In", "values": ["time-slicing"]}
    ]


def test_whole_gpus_keep_off_time_sliced_nodes() -> None:
    (job,) = build(JobRequest(gpus=1, command="x"), UNRENAMED_SHARING).manifests
    assert {
        "key": "nvidia.com/gpu.sharing-strategy",
        "operator": "NotIn",
        "values": ["mps", "time-slicing"],
    } in expressions(job)


def test_shared_gpus_are_refused_where_there_is_no_sharing_or_more_than_one() -> None:
    with pytest.raises(RequestInvalid, match="this cluster has no shared GPUs"):
        build(JobRequest(shared=True, command="x"), PLAIN)
    with pytest.raises(RequestInvalid, match="given one at a time"):
        build(JobRequest(shared=True, gpus=2, command="x"), RENAMED_SHARING)


# -- namespaces, input checks, unreadable cluster ------------------------------------------------


def test_the_namespace_comes_from_the_request_then_the_person_then_the_site() -> None:
    assert build(JobRequest(namespace="vision", command="x")).namespace == "vision"
    assert build(JobRequest(command="x")).namespace == "research"
    nobody = Identity(requester="U-BOB", k8s_user="bob")
    planned = build_manifests(
        footprint(JobRequest(command="x")), nobody, REQUEST_ID, K8sSettings(default_namespace="shared"), PLAIN
    )
    assert planned.namespace == "shared"
    with pytest.raises(RequestInvalid, match="no namespace to run in"):
        build_manifests(footprint(JobRequest(command="x")), nobody, REQUEST_ID, SETTINGS, PLAIN)
    with pytest.raises(RequestInvalid, match="not a Kubernetes namespace name"):
        build(JobRequest(namespace="Bad_NS", command="x"))


def test_windows_line_ends_are_refused() -> None:
    with pytest.raises(RequestInvalid, match="Windows line ends"):
        build(JobRequest(gpus=1, command="python a.py\r\npython b.py"))


def test_a_cluster_without_whole_gpus_says_what_it_offers() -> None:
    only_slices = facts_of(node("mig-1", product=A100_SXM, mig={"3g.40gb": 2}, mig_strategy="mixed"))
    with pytest.raises(RequestInvalid, match=r"offers whole GPUs; it offers MIG slices \(3g.40gb\)"):
        build(JobRequest(gpus=1, command="x"), only_slices)
    with pytest.raises(RequestInvalid, match="offers whole GPUs at all"):
        build(JobRequest(gpus=1, command="x"), facts_of(node("cpu-1")))


def test_nothing_to_run_is_refused() -> None:
    with pytest.raises(RequestInvalid, match="nothing to run"):
        build(JobRequest(gpus=1))
    with pytest.raises(RequestInvalid, match="nothing to run"):
        build(JobRequest(workload="service", gpus=1))


def test_an_image_that_is_not_a_reference_is_refused() -> None:
    with pytest.raises(RequestInvalid, match="not a container image reference"):
        build(JobRequest(image="ubuntu; rm -rf /", command="x"))


def test_slurm_settings_are_named_as_unused() -> None:
    planned = build(JobRequest(gpus=1, partition="gpu", qos="high", command="x"))
    assert any("partition, qos are Slurm settings" in w for w in planned.warnings)


def test_an_unreadable_cluster_plans_from_configuration_and_marks_an_unchecked_type() -> None:
    facts = facts_from_configuration([], "connection refused")
    planned = build(JobRequest(gpus=2, gpu_type="a100", command="x"), facts)
    (job,) = planned.manifests
    assert job["metadata"]["annotations"][UNRESOLVED_ANNOTATION] == "a100"
    assert any("could not be read (connection refused)" in w for w in planned.warnings)
    assert any("cannot be submitted" in w for w in planned.warnings)


def test_configured_products_resolve_a_type_when_the_cluster_is_unreadable() -> None:
    facts = facts_from_configuration([A100_SXM], "timed out")
    (job,) = build(JobRequest(gpus=2, gpu_type="a100", command="x"), facts).manifests
    assert UNRESOLVED_ANNOTATION not in job["metadata"]["annotations"]
    assert expressions(job)[0]["values"] == [A100_SXM]
