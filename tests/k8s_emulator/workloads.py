"""The Deployment, ReplicaSet and Job controllers, each a reconcile function run until nothing changes.

Deployment → ReplicaSet `<name>-<pod-template-hash>` (the hash is kube's FNV-32a of the template,
spelled in the safe alphabet) → pods `<replicaset>-<5 chars>` with the template's labels plus the
hash, and controller ownerReferences. A changed template gets a new ReplicaSet and the old one is
scaled to zero at once (a rollout without surge). Scale-down removes unscheduled, then pending, then
not-ready, then the newest pods first, as the ReplicaSet controller ranks them. Jobs keep
`parallelism` pods active until `completions` succeed or `backoffLimit` failures; a Job with
`ttlSecondsAfterFinished: 0` is removed when it finishes. Statuses roll up from the pods.
Controllers write only when something changed, so the settle loop ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.defaults import admit_pod
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.scheduler import is_terminated
from tests.k8s_emulator.state import NAME_ALPHABET, ClusterState, controller_uid, owner_reference

JsonObject = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"

# The cluster's own delete with background cascading, so garbage collection still holds.
Deleter = Callable[[ResourceType, str, str], None]


def template_hash(template: JsonObject) -> str:
    """ComputeHash: FNV-32a over the template, the decimal digits mapped to the safe alphabet."""
    digest = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True, separators=(",", ":")).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(NAME_ALPHABET[ord(ch) % len(NAME_ALPHABET)] for ch in str(digest))


def owned(state: ClusterState, resource: ResourceType, owner: JsonObject) -> list[JsonObject]:
    namespace, uid = owner["metadata"].get("namespace", ""), owner["metadata"]["uid"]
    return [s.obj for s in state.store.items(resource, namespace) if controller_uid(s.obj) == uid]


def is_ready(pod: JsonObject) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _write_status_if_changed(
    state: ClusterState, resource: ResourceType, obj: JsonObject, status: JsonObject
) -> None:
    if obj.get("status") == status:
        return
    updated = dict(obj)
    updated["metadata"] = dict(obj["metadata"])
    updated["status"] = status
    state.write(resource, updated)


def _condition(
    previous: list[JsonObject], kind: str, status: bool, reason: str, message: str, now: str
) -> JsonObject:
    """A condition that keeps its timestamps while its status and reason stay the same."""
    text = "True" if status else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    if old and old.get("status") == text and old.get("reason") == reason and old.get("message") == message:
        return dict(old)
    return {
        "type": kind,
        "status": text,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


# ---- pods from templates -----------------------------------------------------------------------


def create_pod_from_template(
    state: ClusterState, owner: JsonObject, owner_resource: ResourceType, template: JsonObject, prefix: str
) -> bool:
    """Creates one pod; False (with a FailedCreate event on the owner) when admission rejects it."""
    namespace = owner["metadata"]["namespace"]
    template_metadata = template.get("metadata") or {}
    pod: JsonObject = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": state.new_metadata(state.generate_name(resources.PODS, namespace, prefix), namespace),
        "spec": json.loads(json.dumps(template.get("spec") or {})),
    }
    pod["metadata"]["generateName"] = prefix
    for key in ("labels", "annotations"):
        if template_metadata.get(key):
            pod["metadata"][key] = dict(template_metadata[key])
    pod["metadata"]["ownerReferences"] = [owner_reference(owner)]
    runtime_class = pod["spec"].get("runtimeClassName")
    if runtime_class is not None and runtime_class not in state.knobs.runtime_classes:
        rejection = f'pod rejected: RuntimeClass "{runtime_class}" not found'
        message = f'Error creating: pods "{prefix}" is forbidden: {rejection}'
        record_event(state, owner, "Warning", "FailedCreate", message, component=_component(owner_resource))
        return False
    admit_pod(pod)
    state.write(resources.PODS, pod)
    said = f"Created pod: {pod['metadata']['name']}"
    record_event(state, owner, "Normal", "SuccessfulCreate", said, component=_component(owner_resource))
    return True


def _component(resource: ResourceType) -> str:
    return "job-controller" if resource is resources.JOBS else "replicaset-controller"


def _deletion_rank(pod: JsonObject) -> tuple[int, int]:
    """Lower goes first: unscheduled, pending, not ready, ready; newer before older."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName"):
        stage = 0
    elif status.get("phase") == "Pending":
        stage = 1
    elif not is_ready(pod):
        stage = 2
    else:
        stage = 3
    return stage, -int(pod["metadata"].get("resourceVersion") or 0)


# ---- ReplicaSet ------------------------------------------------------------------------------


def reconcile_replicaset(state: ClusterState, namespace: str, name: str, delete: Deleter) -> None:
    stored = state.get(resources.REPLICASETS, namespace, name)
    if stored is None:
        return
    replicaset = stored.obj
    pods = [p for p in owned(state, resources.PODS, replicaset) if not is_terminated(p)]
    wanted = int(replicaset["spec"].get("replicas", 1))
    if len(pods) < wanted:
        for _ in range(wanted - len(pods)):
            if not create_pod_from_template(
                state, replicaset, resources.REPLICASETS, replicaset["spec"]["template"], f"{name}-"
            ):
                break
    elif len(pods) > wanted:
        for pod in sorted(pods, key=_deletion_rank)[: len(pods) - wanted]:
            delete(resources.PODS, namespace, pod["metadata"]["name"])
            said = f"Deleted pod: {pod['metadata']['name']}"
            record_event(
                state, replicaset, "Normal", "SuccessfulDelete", said, component="replicaset-controller"
            )
    pods = [p for p in owned(state, resources.PODS, replicaset) if not is_terminated(p)]
    ready = sum(1 for p in pods if is_ready(p))
    status: JsonObject = {"replicas": len(pods), "fullyLabeledReplicas": len(pods)}
    if ready:
        status["readyReplicas"] = ready
        status["availableReplicas"] = ready
    status["observedGeneration"] = replicaset["metadata"].get("generation", 1)
    latest = state.get(resources.REPLICASETS, namespace, name)
    if latest is not None:
        _write_status_if_changed(state, resources.REPLICASETS, latest.obj, status)


# ---- Deployment -------------------------------------------------------------------------------


def _new_replicaset(state: ClusterState, deployment: JsonObject, pod_hash: str, revision: int) -> JsonObject:
    metadata, spec = deployment["metadata"], deployment["spec"]
    template = json.loads(json.dumps(spec["template"]))
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = json.loads(json.dumps(spec["selector"]))
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    name = f"{metadata['name']}-{pod_hash}"
    rs_metadata = state.new_metadata(name, metadata["namespace"])
    rs_metadata["labels"] = dict(template["metadata"]["labels"])
    rs_metadata["annotations"] = {
        "deployment.kubernetes.io/desired-replicas": str(spec.get("replicas", 1)),
        "deployment.kubernetes.io/max-replicas": str(int(spec.get("replicas", 1)) + 1),
        REVISION: str(revision),
    }
    rs_metadata["ownerReferences"] = [owner_reference(deployment)]
    rs_metadata["generation"] = 1
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": rs_metadata,
        "spec": {"replicas": int(spec.get("replicas", 1)), "selector": selector, "template": template},
        "status": {"replicas": 0},
    }


def _with_replicas(replicaset: JsonObject, replicas: int) -> JsonObject:
    updated: JsonObject = json.loads(json.dumps(replicaset))
    updated["spec"]["replicas"] = replicas
    updated["metadata"]["generation"] = int(updated["metadata"].get("generation", 1)) + 1
    annotations = updated["metadata"].setdefault("annotations", {})
    annotations["deployment.kubernetes.io/desired-replicas"] = str(replicas)
    return updated


def reconcile_deployment(state: ClusterState, namespace: str, name: str) -> None:
    stored = state.get(resources.DEPLOYMENTS, namespace, name)
    if stored is None:
        return
    deployment = stored.obj
    spec = deployment["spec"]
    wanted = int(spec.get("replicas", 1))
    pod_hash = template_hash(spec["template"])
    replicasets = owned(state, resources.REPLICASETS, deployment)
    current = next(
        (rs for rs in replicasets if rs["metadata"].get("labels", {}).get(HASH_LABEL) == pod_hash), None
    )
    if current is None:
        revision = 1 + max(
            (int(rs["metadata"].get("annotations", {}).get(REVISION, 0)) for rs in replicasets), default=0
        )
        current = _new_replicaset(state, deployment, pod_hash, revision)
        state.write(resources.REPLICASETS, current)
        said = f"Scaled up replica set {current['metadata']['name']} to {wanted}"
        record_event(
            state, deployment, "Normal", "ScalingReplicaSet", said, component="deployment-controller"
        )
    elif int(current["spec"].get("replicas", 1)) != wanted and not spec.get("paused"):
        before = int(current["spec"].get("replicas", 1))
        state.write(resources.REPLICASETS, _with_replicas(current, wanted))
        direction = "up" if wanted > before else "down"
        said = f"Scaled {direction} replica set {current['metadata']['name']} from {before} to {wanted}"
        record_event(
            state, deployment, "Normal", "ScalingReplicaSet", said, component="deployment-controller"
        )
    current_name = current["metadata"]["name"]
    for replicaset in replicasets:
        if replicaset["metadata"]["name"] != current_name and int(replicaset["spec"].get("replicas", 0)) > 0:
            state.write(resources.REPLICASETS, _with_replicas(replicaset, 0))
    _deployment_status(state, namespace, name)


def _deployment_status(state: ClusterState, namespace: str, name: str) -> None:
    stored = state.get(resources.DEPLOYMENTS, namespace, name)
    if stored is None:
        return
    deployment = stored.obj
    wanted = int(deployment["spec"].get("replicas", 1))
    pod_hash = template_hash(deployment["spec"]["template"])
    replicasets = owned(state, resources.REPLICASETS, deployment)
    total = sum(int((rs.get("status") or {}).get("replicas", 0)) for rs in replicasets)
    ready = sum(int((rs.get("status") or {}).get("readyReplicas", 0)) for rs in replicasets)
    available = sum(int((rs.get("status") or {}).get("availableReplicas", 0)) for rs in replicasets)
    current = next(
        (rs for rs in replicasets if rs["metadata"].get("labels", {}).get(HASH_LABEL) == pod_hash), None
    )
    updated = int((current.get("status") or {}).get("replicas", 0)) if current else 0
    now = state.timestamp()
    previous = (deployment.get("status") or {}).get("conditions") or []
    current_name = current["metadata"]["name"] if current else ""
    done = updated == wanted and available >= wanted and total == wanted
    conditions = [
        _condition(
            previous,
            "Available",
            available >= wanted,
            "MinimumReplicasAvailable" if available >= wanted else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if available >= wanted
            else "Deployment does not have minimum availability.",
            now,
        ),
        _condition(
            previous,
            "Progressing",
            True,
            "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
            f'ReplicaSet "{current_name}" has successfully progressed.'
            if done
            else f'ReplicaSet "{current_name}" is progressing.',
            now,
        ),
    ]
    status: JsonObject = {"observedGeneration": deployment["metadata"].get("generation", 1)}
    if total:
        status["replicas"] = total
    if updated:
        status["updatedReplicas"] = updated
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    if total - available > 0 or wanted - available > 0:
        status["unavailableReplicas"] = max(total, wanted) - available
    status["conditions"] = conditions
    _write_status_if_changed(state, resources.DEPLOYMENTS, deployment, status)


def refresh_deployment_status(state: ClusterState, namespace: str, name: str) -> None:
    _deployment_status(state, namespace, name)


# ---- Job --------------------------------------------------------------------------------------


def _finished(job: JsonObject) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def reconcile_job(state: ClusterState, namespace: str, name: str, delete: Deleter) -> None:
    stored = state.get(resources.JOBS, namespace, name)
    if stored is None:
        return
    job = stored.obj
    spec = job["spec"]
    pods = owned(state, resources.PODS, job)
    active = [p for p in pods if not is_terminated(p)]
    succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
    failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
    completions = int(spec.get("completions", 1))
    now = state.timestamp()
    status: JsonObject = dict(job.get("status") or {})
    status.setdefault("startTime", now)
    conditions = list(status.get("conditions") or [])
    if not _finished(job):
        if succeeded >= completions:
            for pod in active:
                delete(resources.PODS, namespace, pod["metadata"]["name"])
            conditions += [
                _job_condition(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                ),
                _job_condition(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods", now
                ),
            ]
            status["completionTime"] = now
            record_event(state, job, "Normal", "Completed", "Job completed", component="job-controller")
        elif failed > int(spec.get("backoffLimit", 6)):
            for pod in active:
                delete(resources.PODS, namespace, pod["metadata"]["name"])
            message = "Job has reached the specified backoff limit"
            conditions += [
                _job_condition("FailureTarget", "BackoffLimitExceeded", message, now),
                _job_condition("Failed", "BackoffLimitExceeded", message, now),
            ]
            record_event(state, job, "Warning", "BackoffLimitExceeded", message, component="job-controller")
        elif not spec.get("suspend"):
            wanted = min(int(spec.get("parallelism", 1)), completions - succeeded)
            for _ in range(wanted - len(active)):
                if not create_pod_from_template(state, job, resources.JOBS, spec["template"], f"{name}-"):
                    break
    active = [p for p in owned(state, resources.PODS, job) if not is_terminated(p)]
    status["active"] = len(active)
    status["ready"] = sum(1 for p in active if is_ready(p))
    status["terminating"] = 0
    status["uncountedTerminatedPods"] = {}
    for key, count in (("succeeded", succeeded), ("failed", failed)):
        if count:
            status[key] = count
        else:
            status.pop(key, None)
    if not status["active"]:
        status.pop("active")
    if conditions:
        status["conditions"] = conditions
    _write_status_if_changed(state, resources.JOBS, job, status)
    finished = state.get(resources.JOBS, namespace, name)
    if finished is not None and _finished(finished.obj) and spec.get("ttlSecondsAfterFinished") == 0:
        delete(resources.JOBS, namespace, name)


def _job_condition(kind: str, reason: str, message: str, now: str) -> JsonObject:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
