"""core/v1 Events as the scheduler, kubelet and controllers record them.

A repeat of the same (object, reason, message) updates the existing Event's `count` and
`lastTimestamp` instead of adding one, as client-go's event correlator does, so a pod retried by the
scheduler keeps one `FailedScheduling` event.
"""

from __future__ import annotations

from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.state import ClusterState

JsonObject = dict[str, Any]


def metadata_name(obj: JsonObject) -> str:
    return str(obj["metadata"]["name"])


def record_event(
    state: ClusterState,
    involved: JsonObject,
    type_: str,
    reason: str,
    message: str,
    *,
    component: str,
    host: str | None = None,
) -> None:
    """An Event about `involved`, in client-go's EventRecorder order: type, reason, message."""
    metadata = involved["metadata"]
    namespace = metadata.get("namespace") or "default"
    involved_object: JsonObject = {
        "kind": involved["kind"],
        "namespace": metadata.get("namespace", ""),
        "name": metadata["name"],
        "uid": metadata["uid"],
        "apiVersion": involved["apiVersion"],
        "resourceVersion": metadata.get("resourceVersion", ""),
    }
    if not involved_object["namespace"]:
        del involved_object["namespace"]
    now = state.timestamp()
    key = (str(metadata["uid"]), reason, message)
    earlier = state.event_index.get(key)
    stored = state.get(resources.EVENTS, *earlier) if earlier else None
    if stored is not None:
        repeated = stored.thaw()
        repeated["count"] = int(repeated.get("count") or 1) + 1
        repeated["lastTimestamp"] = now
        repeated["involvedObject"] = involved_object
        state.write(resources.EVENTS, repeated)
        return
    source: JsonObject = {"component": component}
    if host:
        source["host"] = host
    event: JsonObject = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": state.new_metadata(f"{metadata['name']}.{state.random.getrandbits(64):016x}", namespace),
        "involvedObject": involved_object,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }
    state.write(resources.EVENTS, event)
    state.event_index[key] = (namespace, metadata_name(event))
