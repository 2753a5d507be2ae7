"""The kubelet's part: what a bound pod's status becomes, and how a pod finishes.

No containers run. A bound pod is Running and Ready at once, unless the test says its image cannot
be pulled (Pending, `ImagePullBackOff`), its image crashes (Running, `CrashLoopBackOff`, restarts),
or a Secret its environment needs is missing (Pending, `CreateContainerConfigError`). Texts and
events are the kubelet's.
"""

from __future__ import annotations

from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.events import record_event
from tests.k8s_emulator.state import ClusterState

JsonObject = dict[str, Any]

CRASH_RESTARTS = 3


def _pod_ip(state: ClusterState) -> str:
    return f"10.244.{state.random.randrange(256)}.{state.random.randrange(1, 255)}"


def _missing_secret(state: ClusterState, namespace: str, container: JsonObject) -> str | None:
    """The kubelet's CreateContainerConfigError text for a missing Secret (or key), if any."""
    for env in container.get("env") or []:
        reference = (env.get("valueFrom") or {}).get("secretKeyRef")
        if not reference or reference.get("optional"):
            continue
        secret = state.get(resources.SECRETS, namespace, reference.get("name", ""))
        if secret is None:
            return f'secret "{reference.get("name")}" not found'
        if reference.get("key") not in (secret.obj.get("data") or {}):
            return f"couldn't find key {reference.get('key')} in Secret {namespace}/{reference.get('name')}"
    for source in container.get("envFrom") or []:
        reference = source.get("secretRef")
        missing = reference and state.get(resources.SECRETS, namespace, reference.get("name", "")) is None
        if missing and not reference.get("optional"):
            return f'secret "{reference.get("name")}" not found'
    return None


def _condition(kind: str, status: bool, now: str, reason: str = "", message: str = "") -> JsonObject:
    condition: JsonObject = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def start_pod(state: ClusterState, pod: JsonObject, *, record: bool = True) -> None:
    """Fills the status of a pod just bound to `spec.nodeName` (mutates `pod`) and records events."""
    now = state.timestamp()
    metadata, spec = pod["metadata"], pod["spec"]
    namespace, name = metadata.get("namespace", ""), metadata["name"]
    node = spec["nodeName"]
    statuses: list[JsonObject] = []
    events: list[tuple[str, str, str]] = []
    for container in spec.get("containers") or []:
        image, container_name = container.get("image", ""), container["name"]
        status: JsonObject = {
            "name": container_name,
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
        }
        config_error = _missing_secret(state, namespace, container)
        if image in state.knobs.unpullable_images:
            status["state"] = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}
            }
            failure = (
                f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                f'unpack image "{image}": failed to resolve reference "{image}": not found'
            )
            events += [
                ("Normal", "Pulling", f'Pulling image "{image}"'),
                ("Warning", "Failed", failure),
                ("Warning", "Failed", "Error: ErrImagePull"),
                ("Normal", "BackOff", f'Back-off pulling image "{image}"'),
                ("Warning", "Failed", "Error: ImagePullBackOff"),
            ]
        elif config_error is not None:
            status["imageID"] = f"{image}@sha256:{'0' * 64}"
            status["state"] = {"waiting": {"reason": "CreateContainerConfigError", "message": config_error}}
            events.append(("Warning", "Failed", f"Error: {config_error}"))
        elif image in state.knobs.crashing_images:
            status["imageID"] = f"{image}@sha256:{'0' * 64}"
            status["restartCount"] = CRASH_RESTARTS
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 40s restarting failed container={container_name} "
                    f"pod={name}_{namespace}({metadata['uid']})",
                }
            }
            status["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": f"containerd://{state.random.getrandbits(128):032x}",
                }
            }
            pod_id = f"{name}_{namespace}({metadata['uid']})"
            events.append(
                (
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {container_name} in pod {pod_id}",
                )
            )
        else:
            status.update(
                {
                    "imageID": f"{image}@sha256:{'0' * 64}",
                    "ready": True,
                    "started": True,
                    "state": {"running": {"startedAt": now}},
                    "containerID": f"containerd://{state.random.getrandbits(128):032x}",
                }
            )
            events += [
                ("Normal", "Pulled", f'Container image "{image}" already present on machine'),
                ("Normal", "Created", f"Created container {container_name}"),
                ("Normal", "Started", f"Started container {container_name}"),
            ]
        statuses.append(status)
    never_started = any(
        s["state"].get("waiting", {}).get("reason") in ("ImagePullBackOff", "CreateContainerConfigError")
        for s in statuses
    )
    unready = [s["name"] for s in statuses if not s["ready"]]
    not_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    ip = _pod_ip(state)
    node_obj = state.get(resources.NODES, "", node)
    host_ip = (
        next(
            (
                a["address"]
                for a in (node_obj.obj["status"].get("addresses") or [])
                if a["type"] == "InternalIP"
            ),
            "10.0.0.1",
        )
        if node_obj
        else "10.0.0.1"
    )
    pod["status"] = {
        "phase": "Pending" if never_started else "Running",
        "conditions": [
            _condition("PodReadyToStartContainers", True, now),
            _condition("Initialized", True, now),
            _condition(
                "Ready", not unready, now, *(("ContainersNotReady", not_ready_message) if unready else ())
            ),
            _condition(
                "ContainersReady",
                not unready,
                now,
                *(("ContainersNotReady", not_ready_message) if unready else ()),
            ),
            _condition("PodScheduled", True, now),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort"),
    }
    if spec.get("initContainers"):
        pod["status"]["initContainerStatuses"] = [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "imageID": f"{c.get('image', '')}@sha256:{'0' * 64}",
                "ready": True,
                "restartCount": 0,
                "started": False,
                "state": {
                    "terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}
                },
            }
            for c in spec["initContainers"]
        ]
    crashed = any(c.get("image") in state.knobs.crashing_images for c in spec.get("containers") or [])
    if crashed and spec.get("restartPolicy") == "Never":
        # Nothing restarts it: the pod fails (and a Job counts the failure).
        finish_pod(pod, succeeded=False, now=now)
        events = [e for e in events if e[1] != "BackOff"]
    for type_, reason, message in events if record else []:
        record_event(state, pod, type_, reason, message, component="kubelet", host=node)


def finish_pod(
    pod: JsonObject, *, succeeded: bool, now: str, exit_code: int | None = None, logs: str = ""
) -> None:
    """Marks every container terminated and the pod Succeeded or Failed (mutates `pod`). A failed
    container whose terminationMessagePolicy is FallbackToLogsOnError gets the last of `logs` (up to
    80 lines or 2,048 bytes, as the kubelet keeps) as its message."""
    code = (0 if succeeded else 1) if exit_code is None else exit_code
    status = pod.setdefault("status", {})
    status["phase"] = "Succeeded" if succeeded else "Failed"
    reason = "PodCompleted" if succeeded else "PodFailed"
    for condition in status.get("conditions") or []:
        if condition["type"] in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
            condition.update({"status": "False", "reason": reason, "lastTransitionTime": now})
            condition.pop("message", None)
    policies = {c.get("name"): c.get("terminationMessagePolicy") for c in pod["spec"].get("containers") or []}
    for container in status.get("containerStatuses") or []:
        container.update({"ready": False, "started": False})
        terminated = {
            "exitCode": code,
            "reason": "Completed" if succeeded else "Error",
            "startedAt": now,
            "finishedAt": now,
        }
        if not succeeded and logs and policies.get(container.get("name")) == "FallbackToLogsOnError":
            terminated["message"] = "\n".join(logs.splitlines()[-80:])[-2048:]
        container["state"] = {"terminated": terminated}
