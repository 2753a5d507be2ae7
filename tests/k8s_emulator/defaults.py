"""Defaulting and admission as the apiserver applies them on create.

Clients see these fields in every response (and kubernetes-validate-clean manifests rely on them
being filled in server-side), so the emulator fills the same ones: pod spec defaults, requests
copied from limits, the DefaultTolerationSeconds tolerations, workload defaults and the Job's
generated selector and labels.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.resources import ResourceType

JsonObject = dict[str, Any]

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"


def _image_pull_policy(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    if "@" in name:
        return "IfNotPresent"
    tag = name.split(":", 1)[1] if ":" in name else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_container(container: JsonObject) -> None:
    if isinstance(container.get("image"), str) and container["image"]:
        container.setdefault("imagePullPolicy", _image_pull_policy(container["image"]))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def default_pod_spec(spec: JsonObject) -> None:
    """`SetDefaults_PodSpec` and the container defaults (used for pods and pod templates)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        if isinstance(container, dict):
            _default_container(container)


def admit_pod(pod: JsonObject) -> None:
    """Pod-only defaults and admission: requests from limits, service account, tolerations, priority."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources_ = container.setdefault("resources", {})
        limits = resources_.get("limits") or {}
        if limits:
            requests = resources_.setdefault("requests", {})
            for name, quantity in limits.items():
                requests.setdefault(name, quantity)
    tolerations = spec.setdefault("tolerations", [])
    for key in (NOT_READY_TAINT, UNREACHABLE_TAINT):
        if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    pod.setdefault("status", {})
    pod["status"].setdefault("phase", "Pending")
    pod["status"]["qosClass"] = _qos_class(spec)


def _qos_class(spec: JsonObject) -> str:
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    guaranteed = bool(containers)
    best_effort = True
    for container in containers:
        resources_ = container.get("resources") or {}
        requests, limits = resources_.get("requests") or {}, resources_.get("limits") or {}
        if requests or limits:
            best_effort = False
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits[name]) != limits[name]:
                guaranteed = False
    if best_effort:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_template(obj: JsonObject) -> None:
    template = obj.setdefault("spec", {}).setdefault("template", {})
    template.setdefault("metadata", {})
    default_pod_spec(template.setdefault("spec", {}))


def apply_defaults(resource: ResourceType, obj: JsonObject) -> None:
    """Defaults for a new object of `resource` (metadata is the caller's business)."""
    spec = obj.get("spec")
    if resource is resources.PODS:
        admit_pod(obj)
    elif resource is resources.DEPLOYMENTS:
        _default_template(obj)
        spec = obj["spec"]
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        )
        obj.setdefault("status", {})
    elif resource is resources.REPLICASETS:
        _default_template(obj)
        obj["spec"].setdefault("replicas", 1)
        obj.setdefault("status", {"replicas": 0})
    elif resource is resources.JOBS:
        _default_template(obj)
        spec = obj["spec"]
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        obj.setdefault("status", {})
    elif resource is resources.SERVICES and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        obj.setdefault("status", {"loadBalancer": {}})
    elif resource is resources.ENDPOINTSLICES:
        for port in obj.get("ports") or []:  # SetDefaults_EndpointPort
            port.setdefault("name", "")
            port.setdefault("protocol", "TCP")
    elif resource is resources.NAMESPACES:
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif resource is resources.SECRETS:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    elif resource is resources.PVCS and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {"phase": "Pending"})


def add_job_selector(job: JsonObject) -> None:
    """What the Job strategy does on create: a selector on the job's uid, and labels that match it."""
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    spec = job["spec"]
    if not spec.get("manualSelector"):
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = spec["template"]["metadata"].setdefault("labels", {})
    labels.update(
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
    )
    # SetDefaults_Job shares the template's label map with an unlabelled Job, so it shows them too.
    if not job["metadata"].get("labels"):
        job["metadata"]["labels"] = dict(labels)
