"""The manifests a request becomes: plain dicts, exactly as the API server receives them.

Built as data, never as YAML text, so nothing a person wrote can add a field: a command goes into
`command: ["/bin/sh", "-c", <text>]` as ONE argv element, names are reduced to DNS labels
(naming.py), images and model ids are checked, and everything else comes from typed fields.

- `service` (or a model to serve, or a port) → `apps/v1` Deployment, plus a `v1` Service when a
  port is given or a model is served. GPU Deployments use the `Recreate` strategy: a rolling update
  would need a second set of GPUs while the old pods still hold theirs.
- `batch` → `batch/v1` Job: `backoffLimit`, `activeDeadlineSeconds` from the time limit,
  `ttlSecondsAfterFinished`; several nodes become an Indexed Job with one pod per node (each
  pod gets `JOB_COMPLETION_INDEX`; the program does its own rendezvous).
- GPUs: limits = requests (placement.py decides the resource and the node affinity), a toleration
  for the usual `nvidia.com/gpu:NoSchedule` taint, and the site's runtimeClassName and
  priorityClassName.
- Labels `app.kubernetes.io/managed-by: gpu-concierge`, `app.kubernetes.io/name`,
  `gpu-concierge/request-id` on the workload and its pods (statuses find every workload of ours
  with one labelled LIST); annotations say who asked (the owner check when cancelling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backends.errors import RequestInvalid
from backends.k8s.facts import ClusterFacts
from backends.k8s.naming import is_namespace, label_value, workload_name
from backends.k8s.placement import GPU_TOLERATION, GpuPlacement, place_gpus
from backends.k8s.settings import K8sSettings
from backends.k8s.templates import ServingEngine, serving_engine, serving_pod
from backends.types import Footprint, Identity, JobRequest

# Said in the preview: the containers get only what the manifests set (no env is copied from the bot).
CONTAINER_ENVIRONMENT = (
    "runs in its container image's own environment, with only the variables the manifests below set; "
    "nothing of the bot's environment is passed on"
)
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "gpu-concierge"
NAME_LABEL = "app.kubernetes.io/name"
REQUEST_LABEL = "gpu-concierge/request-id"
WORKLOAD_LABEL = "gpu-concierge/workload"
REQUESTER_ANNOTATION = "gpu-concierge/requester"
K8S_USER_ANNOTATION = "gpu-concierge/k8s-user"
GPUS_ANNOTATION = "gpu-concierge/gpus"
GPU_TYPE_ANNOTATION = "gpu-concierge/gpu-type"
UNRESOLVED_ANNOTATION = "gpu-concierge/unresolved-gpu-type"
OUR_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_SLURM_ONLY = ("partition", "account", "qos")


@dataclass(frozen=True)
class WorkloadPlan:
    kind: str  # "Deployment" or "Job"
    namespace: str
    name: str
    manifests: tuple[dict[str, Any], ...]
    warnings: tuple[str, ...] = ()


def resolve_namespace(request: JobRequest, identity: Identity, settings: K8sSettings) -> str:
    namespace = request.namespace or identity.default_namespace or settings.default_namespace
    if not namespace:
        raise RequestInvalid(
            f"no namespace to run in: the request names none, {identity.requester} has no default "
            "namespace in the identity map, and the site sets none. Say `in namespace <name>`, or ask "
            f"an admin to map one (`concierge users map {identity.requester} … --namespace <name>`)"
        )
    if not is_namespace(namespace):
        raise RequestInvalid(
            f"{namespace!r} is not a Kubernetes namespace name: lowercase letters, digits and '-', "
            "at most 63 characters"
        )
    return namespace


def _checked_image(image: str) -> str:
    if not _IMAGE.match(image):
        raise RequestInvalid(
            f"{image!r} is not a container image reference like registry/repo:tag (letters, digits, "
            "'.', '_', '-', '/', ':' and '@' only)"
        )
    return image


def _checked_command(command: str) -> str:
    if "\x00" in command:
        raise RequestInvalid("the command contains a NUL character, which a container command cannot hold")
    if "\r" in command:
        raise RequestInvalid(
            "the command has Windows line ends (\\r\\n), which the shell would read as part of each "
            "line; send it with plain newlines (e.g. run dos2unix on a pasted script)"
        )
    return command


def _resources(request: JobRequest, placement: GpuPlacement) -> dict[str, Any]:
    gpus = {name: str(amount) for name, amount in placement.resources.items()}
    requests: dict[str, str] = dict(gpus)
    limits: dict[str, str] = dict(gpus)
    if request.cpus is not None:
        requests["cpu"] = str(request.cpus)
    if request.memory_gb is not None:
        requests["memory"] = limits["memory"] = f"{request.memory_gb}Gi"
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _labels(name: str, request_id: str, workload: str) -> dict[str, str]:
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        NAME_LABEL: name,
        REQUEST_LABEL: label_value(request_id) or "none",
        WORKLOAD_LABEL: workload,
    }


def _annotations(identity: Identity, placement: GpuPlacement) -> dict[str, str]:
    annotations = {REQUESTER_ANNOTATION: identity.requester}
    if identity.k8s_user:
        annotations[K8S_USER_ANNOTATION] = identity.k8s_user
    if placement.wants_gpus:
        annotations[GPUS_ANNOTATION] = placement.described
        if placement.gpu_type:
            annotations[GPU_TYPE_ANNOTATION] = placement.gpu_type
    if placement.unresolved:
        annotations[UNRESOLVED_ANNOTATION] = placement.unresolved
    return annotations


def _pod_spec(
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    placement: GpuPlacement,
    settings: K8sSettings,
    restart_policy: str,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": restart_policy, "containers": containers}
    if placement.wants_gpus:
        spec["tolerations"] = [dict(GPU_TOLERATION)]
        if settings.runtime_class_name:
            spec["runtimeClassName"] = settings.runtime_class_name
    if placement.expressions:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [dict(e) for e in placement.expressions]}]
                }
            }
        }
    if settings.priority_class_name:
        spec["priorityClassName"] = settings.priority_class_name
    if volumes:
        spec["volumes"] = volumes
    return spec


def _warnings(request: JobRequest, service: bool, facts: ClusterFacts) -> list[str]:
    warnings: list[str] = []
    if not facts.from_cluster:
        warnings.append(
            f"the cluster could not be read ({facts.note or 'no answer'}); this plan was made from "
            "configuration alone, without checking which GPUs the nodes offer"
        )
    ignored = [field for field in _SLURM_ONLY if getattr(request, field)]
    if ignored:
        warnings.append(
            f"{', '.join(ignored)} {'is a Slurm setting' if len(ignored) == 1 else 'are Slurm settings'}"
            " and not used on Kubernetes"
        )
    if service and request.time_limit_minutes is not None:
        warnings.append(
            "a service runs until it is cancelled: Kubernetes does not stop a Deployment after "
            f"{request.time_limit_minutes} minutes"
        )
    if service and request.nodes and request.nodes > 1:
        warnings.append("a service runs as replicas, not nodes: ask for replicas instead")
    if not service and request.replicas and request.replicas > 1:
        warnings.append(
            "a batch job runs once; replicas are for services (ask for nodes to run several pods)"
        )
    if not service and request.nodes and request.nodes > 1:
        warnings.append(
            f"{request.nodes} nodes become an Indexed Job of {request.nodes} pods; each gets "
            "JOB_COMPLETION_INDEX and must find the others itself (no MPI or torchrun launcher is set up)"
        )
    return warnings


def build_manifests(
    footprint: Footprint,
    identity: Identity,
    request_id: str,
    settings: K8sSettings,
    facts: ClusterFacts,
) -> WorkloadPlan:
    """The Deployment (+ Service) or Job for a request, as the API server receives them. Replicas,
    pods, GPUs per pod and the deadline come from the footprint: exactly what was judged."""
    request = footprint.request
    namespace = resolve_namespace(request, identity, settings)
    if request.command:
        _checked_command(request.command)
    service = footprint.service
    engine = serving_engine(request)
    placement = place_gpus(footprint, facts)
    if engine is not None and not placement.wants_gpus:
        raise RequestInvalid(f"serving {request.model} needs a GPU: say how many, e.g. '1 A100'")
    name = workload_name(request, request_id, unique=not service)
    if engine is None and not request.command and not request.image:
        what = "a model to serve, an image or a command" if service else "a command or an image"
        raise RequestInvalid(
            f"there is nothing to run: a {'service' if service else 'batch job'} needs {what}, e.g. "
            '`1 A100 to run "python3 train.py"`'
        )
    image = _checked_image(request.image) if request.image else None
    resources = _resources(request, placement)
    gpus_per_pod = sum(placement.resources.values())
    port = request.port
    volumes: list[dict[str, Any]] = []
    if engine is not None:
        serving = serving_pod(request, settings, engine, image=image, resources=resources, gpus=gpus_per_pod)
        container, port = serving.container, serving.port
        volumes = list(serving.volumes)
    else:
        container = {"name": "main", "image": image or settings.default_image}
        # A failed container's last log lines become its terminated message: how it failed is read
        # from the pod's status, with no log call (backends/k8s/workloads.py _ending).
        container["terminationMessagePolicy"] = "FallbackToLogsOnError"
        if request.command:
            container["command"] = ["/bin/sh", "-c", request.command]
        if port:
            container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        if resources:
            container["resources"] = resources
    workload = "service" if service else "batch"
    labels = _labels(name, request_id, workload)
    annotations = _annotations(identity, placement)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    template = {"metadata": {"labels": dict(labels)}}
    warnings = [*placement.warnings, *_warnings(request, service, facts)]
    if engine is ServingEngine.TGI and request.image is None:
        warnings.append(f"serving {request.model} with Hugging Face TGI ({settings.tgi_image})")
    manifests: list[dict[str, Any]] = []
    if service:
        selector = {NAME_LABEL: name, REQUEST_LABEL: labels[REQUEST_LABEL]}
        spec: dict[str, Any] = {
            "replicas": footprint.units,
            "selector": {"matchLabels": selector},
            "template": {**template, "spec": _pod_spec([container], volumes, placement, settings, "Always")},
        }
        if placement.wants_gpus:
            spec["strategy"] = {"type": "Recreate"}
        manifests.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec})
        if port:
            manifests.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        **metadata,
                        "labels": dict(labels),
                        "annotations": dict(metadata["annotations"]),
                    },
                    "spec": {
                        "type": "ClusterIP",
                        "selector": dict(selector),
                        "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
                    },
                }
            )
        kind = "Deployment"
    else:
        job_spec: dict[str, Any] = {
            "backoffLimit": settings.backoff_limit,
            "template": {**template, "spec": _pod_spec([container], volumes, placement, settings, "Never")},
        }
        if footprint.time_limit_minutes is not None:
            job_spec["activeDeadlineSeconds"] = footprint.time_limit_minutes * 60
        if settings.ttl_seconds_after_finished is not None:
            job_spec["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
        if footprint.units > 1:
            job_spec.update(
                {"completions": footprint.units, "parallelism": footprint.units, "completionMode": "Indexed"}
            )
        manifests.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec})
        kind = "Job"
    return WorkloadPlan(kind, namespace, name, tuple(manifests), tuple(warnings))
