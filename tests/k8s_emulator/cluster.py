"""The API verbs over the store, with the apiserver's order of work, and the controllers run after each.

create: decode checks → namespace exists → generateName → defaulting → validation (422) → exists
(409) → persist. update/patch: 404 → resourceVersion precondition (409 Conflict) → status kept from
storage (it is a subresource) → generation bumped on spec change → validation and immutability →
persist. delete: garbage collection by `propagationPolicy` (Orphan strips ownerReferences; Background
and Foreground delete dependents), pods deleted at once (no grace period). `dry_run` stops each just
before persisting. After every write the controllers and the scheduler run synchronously until quiet
(`settle`), so an API call returns with its consequences in place: no sleeps in tests.
"""

from __future__ import annotations

import base64
import json
from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.defaults import add_job_selector, admit_pod, apply_defaults
from tests.k8s_emulator.errors import ApiError, FieldError, status_body
from tests.k8s_emulator.kubelet import finish_pod, start_pod
from tests.k8s_emulator.nodes import sync_node_taints
from tests.k8s_emulator.patches import apply_patch
from tests.k8s_emulator.resources import ResourceType
from tests.k8s_emulator.scheduler import Scheduler
from tests.k8s_emulator.selectors import (
    FieldSelector,
    LabelSelector,
    fields_match,
    labels_match,
    selector_to_string,
)
from tests.k8s_emulator.state import ClusterState, controller_of
from tests.k8s_emulator.store import Stored
from tests.k8s_emulator.validation import object_errors, raise_if_invalid, update_errors
from tests.k8s_emulator.workloads import reconcile_deployment, reconcile_job, reconcile_replicaset

JsonObject = dict[str, Any]

JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background '
    'to remove them or set propagationPolicy=Orphan to suppress this warning"'
)
# Kinds that can own others through ownerReferences (events never do).
_DEPENDENT_KINDS = (
    resources.DEPLOYMENTS,
    resources.REPLICASETS,
    resources.JOBS,
    resources.PODS,
    resources.SERVICES,
    resources.SECRETS,
    resources.PVCS,
    resources.ENDPOINTSLICES,
)
_SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "deletionTimestamp",
    "managedFields",
)
_MAX_SETTLE_STEPS = 1_000_000


def _without_nulls(value: Any) -> Any:
    """Decoding into Go structs drops JSON nulls (the client sends them for unset model fields)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


class Cluster:
    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.scheduler = Scheduler(state)
        self._dirty: dict[tuple[ResourceType, str, str], None] = {}
        self._next_cluster_ip = 1
        state.store.on_change(self._noticed)

    @property
    def lock(self) -> Any:
        return self.state.store.lock

    # ---- reading ------------------------------------------------------------------------------

    def get(self, resource: ResourceType, namespace: str, name: str) -> Stored:
        stored = self.state.get(resource, namespace, name)
        if stored is None:
            raise ApiError.not_found(resource, name)
        return stored

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        labels: LabelSelector = (),
        fields: FieldSelector = (),
        limit: int = 0,
        continue_token: str = "",
    ) -> tuple[list[Stored], int, str, int | None]:
        """(items, resourceVersion, continue token, remainingItemCount) in etcd key order."""
        with self.lock:
            revision = self.state.store.revision
            items = self.state.store.items(resource, namespace)
        if labels or fields:
            items = [
                s
                for s in items
                if labels_match(labels, s.obj["metadata"].get("labels")) and fields_match(fields, s.obj)
            ]
        if continue_token:
            try:
                start = json.loads(base64.b64decode(continue_token))
                after = (str(start["namespace"]), str(start["name"]))
            except (ValueError, KeyError, TypeError):
                raise ApiError.bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion"
                ) from None
            keys = [(s.namespace, s.name) for s in items]
            items = items[bisect_right(keys, after) :]
        token, remaining = "", None
        if limit and len(items) > limit:
            last = items[limit - 1]
            token = base64.b64encode(
                json.dumps({"namespace": last.namespace, "name": last.name, "rv": revision}).encode()
            ).decode()
            remaining = len(items) - limit
            items = items[:limit]
        return items, revision, token, remaining

    # ---- creating -----------------------------------------------------------------------------

    def create(
        self, resource: ResourceType, namespace: str, body: object, *, dry_run: bool = False
    ) -> JsonObject:
        obj = self._decode(resource, body)
        metadata = obj["metadata"]
        if resource.namespaced:
            if metadata.get("namespace") not in (None, "", namespace):
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if metadata.get("resourceVersion"):
            raise ApiError.bad_request("resourceVersion should not be set on objects to be created")
        with self.lock:
            if resource.namespaced and self.state.get(resources.NAMESPACES, "", namespace) is None:
                raise ApiError.not_found(resources.NAMESPACES, namespace)
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = self.state.generate_name(resource, namespace, metadata["generateName"])
            for key in _SERVER_METADATA:
                metadata.pop(key, None)
            metadata["uid"] = self.state.new_uid()
            metadata["creationTimestamp"] = self.state.timestamp()
            if resource.has_generation:
                metadata["generation"] = 1
            if resource.has_status and resource not in (resources.NODES,):
                obj.pop("status", None)
            apply_defaults(resource, obj)
            if resource is resources.JOBS:
                add_job_selector(obj)
            if resource is resources.PVCS:
                self._bind_claim(obj)
            raise_if_invalid(resource, str(metadata.get("name") or ""), object_errors(resource, obj))
            if resource is resources.SERVICES:
                self._allocate_cluster_ip(obj, dry_run)
            if resource is resources.PODS:
                self._admit_runtime_class(obj)
            if (
                self.state.get(resource, namespace if resource.namespaced else "", metadata["name"])
                is not None
            ):
                raise ApiError.already_exists(resource, metadata["name"])
            if dry_run:
                return obj
            if resource is resources.PODS and obj["spec"].get("nodeName"):
                start_pod(self.state, obj)
            stored = self.state.write(resource, obj)
            self.settle()
            return stored.thaw()

    def _decode(self, resource: ResourceType, body: object) -> JsonObject:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the body of the request was not a JSON object")
        obj: JsonObject = _without_nulls(json.loads(json.dumps(body)))
        api_version = obj.setdefault("apiVersion", resource.api_version)
        kind = obj.setdefault("kind", resource.kind)
        if api_version != resource.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({resource.api_version})"
            )
        if kind != resource.kind:
            raise ApiError.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        return obj

    def _admit_runtime_class(self, pod: JsonObject) -> None:
        runtime_class = pod["spec"].get("runtimeClassName")
        if runtime_class is not None and runtime_class not in self.state.knobs.runtime_classes:
            raise ApiError.forbidden(
                resources.PODS,
                pod["metadata"]["name"],
                f'pod rejected: RuntimeClass "{runtime_class}" not found',
            )

    def _allocate_cluster_ip(self, service: JsonObject, dry_run: bool) -> None:
        spec = service["spec"]
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        number = self._next_cluster_ip
        if not dry_run:
            self._next_cluster_ip += 1
        spec.setdefault("clusterIP", f"10.96.{number // 250}.{number % 250 + 1}")
        spec["clusterIPs"] = [spec["clusterIP"]]

    @staticmethod
    def _bind_claim(claim: JsonObject) -> None:
        """A default StorageClass with Immediate binding: the claim is Bound at once."""
        spec = claim.get("spec") or {}
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        claim["status"] = {"phase": "Bound", "accessModes": list(spec.get("accessModes") or [])}
        if storage:
            claim["status"]["capacity"] = {"storage": storage}
        spec.setdefault("storageClassName", "standard")
        spec.setdefault("volumeName", f"pvc-{claim['metadata']['uid']}")

    # ---- updating -----------------------------------------------------------------------------

    def replace(
        self, resource: ResourceType, namespace: str, name: str, body: object, *, dry_run: bool = False
    ) -> JsonObject:
        obj = self._decode(resource, body)
        if obj["metadata"].get("name") and obj["metadata"]["name"] != name:
            given = obj["metadata"]["name"]
            raise ApiError.bad_request(
                f"the name of the object ({given}) does not match the name on the URL ({name})"
            )
        if resource.namespaced and obj["metadata"].get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        with self.lock:
            return self._update(resource, self.get(resource, namespace, name), obj, dry_run=dry_run)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: object,
        *,
        dry_run: bool = False,
        subresource: str = "",
    ) -> JsonObject:
        with self.lock:
            current = self.get(resource, namespace, name)
            patched = apply_patch(content_type, current.thaw(), patch)
            if subresource == "status":
                return self._update_status(resource, current, patched, dry_run=dry_run)
            return self._update(resource, current, patched, dry_run=dry_run)

    def replace_status(
        self, resource: ResourceType, namespace: str, name: str, body: object, *, dry_run: bool = False
    ) -> JsonObject:
        obj = self._decode(resource, body)
        with self.lock:
            return self._update_status(resource, self.get(resource, namespace, name), obj, dry_run=dry_run)

    def _check_precondition(self, resource: ResourceType, current: Stored, new: JsonObject) -> None:
        wanted = new["metadata"].get("resourceVersion")
        if wanted and wanted != current.obj["metadata"]["resourceVersion"]:
            raise ApiError.conflict(resource, current.name)

    def _update(
        self, resource: ResourceType, current: Stored, new: JsonObject, *, dry_run: bool
    ) -> JsonObject:
        self._check_precondition(resource, current, new)
        old = current.obj
        metadata = new.setdefault("metadata", {})
        for key in ("uid", "creationTimestamp", "namespace", "name", "generateName"):
            if key in old["metadata"]:
                metadata[key] = old["metadata"][key]
        metadata.pop("resourceVersion", None)
        if resource.has_status and "status" in old:
            new["status"] = json.loads(json.dumps(old["status"]))
        elif resource.has_status:
            new.pop("status", None)
        if resource is resources.PODS:
            admit_pod(new)
            new["status"] = json.loads(json.dumps(old.get("status") or {}))
        elif resource is not resources.NAMESPACES:
            apply_defaults(resource, new)
            if resource.has_status:
                new["status"] = json.loads(json.dumps(old.get("status") or {}))
        if resource.has_generation:
            generation = int(old["metadata"].get("generation", 1))
            metadata["generation"] = generation + 1 if new.get("spec") != old.get("spec") else generation
        errors = object_errors(resource, new) + update_errors(resource, old, new)
        raise_if_invalid(resource, current.name, errors)
        if dry_run:
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return new
        stored = self.state.write(resource, new)
        self.settle()
        return stored.thaw()

    def _update_status(
        self, resource: ResourceType, current: Stored, new: JsonObject, *, dry_run: bool
    ) -> JsonObject:
        self._check_precondition(resource, current, new)
        updated = current.thaw()
        updated["status"] = new.get("status") or {}
        if dry_run:
            return updated
        stored = self.state.write(resource, updated)
        self.settle()
        return stored.thaw()

    # ---- scale subresource --------------------------------------------------------------------

    def scale(self, resource: ResourceType, namespace: str, name: str) -> JsonObject:
        workload = self.get(resource, namespace, name).obj
        metadata = workload["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
                "resourceVersion": metadata["resourceVersion"],
                "creationTimestamp": metadata["creationTimestamp"],
            },
            "spec": {"replicas": int(workload["spec"].get("replicas", 1))},
            "status": {
                "replicas": int((workload.get("status") or {}).get("replicas", 0)),
                "selector": selector_to_string(workload["spec"].get("selector")),
            },
        }

    def update_scale(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        body: object = None,
        content_type: str = "",
        patch: object = None,
        dry_run: bool = False,
    ) -> JsonObject:
        with self.lock:
            current_scale = self.scale(resource, namespace, name)
            if content_type:
                new_scale = apply_patch(content_type, current_scale, patch)
            elif isinstance(body, dict):
                new_scale = body
            else:
                raise ApiError.bad_request("the body of the request was not a JSON object")
            replicas = (new_scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or replicas < 0:
                error = FieldError("invalid", "spec.replicas", "must be greater than or equal to 0", replicas)
                invalid = ApiError.invalid(resource, name, [error])
                invalid.body["message"] = invalid.body["message"].replace(
                    f"{resource.kind}.{resource.group}", "Scale.autoscaling"
                )
                invalid.body["details"].update({"group": "autoscaling", "kind": "Scale"})
                raise invalid
            wanted_version = (new_scale.get("metadata") or {}).get("resourceVersion")
            current = self.get(resource, namespace, name)
            if wanted_version and wanted_version != current.obj["metadata"]["resourceVersion"]:
                raise ApiError.conflict(resource, name)
            workload = current.thaw()
            workload["spec"]["replicas"] = replicas
            if dry_run:
                result = self.scale(resource, namespace, name)
                result["spec"]["replicas"] = replicas
                return result
            workload["metadata"]["generation"] = int(workload["metadata"].get("generation", 1)) + 1
            self.state.write(resource, workload)
            self.settle()
            return self.scale(resource, namespace, name)

    # ---- deleting -----------------------------------------------------------------------------

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        dry_run: bool = False,
        expected_uid: str | None = None,
        expected_version: str | None = None,
    ) -> tuple[int, JsonObject, dict[str, str]]:
        """(HTTP status, body, extra headers) as the apiserver answers a DELETE."""
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise ApiError.bad_request(f'propagationPolicy: Unsupported value: "{propagation}"')
        headers: dict[str, str] = {}
        if propagation is None:
            propagation = resource.default_propagation
            if resource is resources.JOBS:
                headers["Warning"] = JOB_ORPHAN_WARNING
        with self.lock:
            current = self.get(resource, namespace, name)
            metadata = current.obj["metadata"]
            if expected_uid and expected_uid != metadata["uid"]:
                raise ApiError.conflict(resource, name)
            if expected_version and expected_version != metadata["resourceVersion"]:
                raise ApiError.conflict(resource, name)
            if dry_run:
                return 200, self._deleted_body(resource, current, propagation, dry_run=True), headers
            removed = self._delete(resource, namespace, name, propagation)
            self.settle()
            code = (
                202
                if propagation == "Foreground" and resource not in (resources.PODS, resources.NAMESPACES)
                else 200
            )
            return code, self._deleted_body(resource, removed, propagation, dry_run=False), headers

    def _deleted_body(
        self, resource: ResourceType, stored: Stored, propagation: str, *, dry_run: bool
    ) -> JsonObject:
        """Pods, Services and Namespaces return the object; others a Success Status (or the object
        with a deletionTimestamp while Foreground deletion is under way)."""
        if resource in (resources.PODS, resources.SERVICES, resources.NAMESPACES, resources.PVCS):
            return stored.thaw()
        if propagation == "Foreground":
            obj = stored.thaw()
            obj["metadata"]["deletionTimestamp"] = self.state.timestamp()
            obj["metadata"]["finalizers"] = ["foregroundDeletion"]
            return obj
        details: JsonObject = {"name": stored.name}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        details["uid"] = stored.obj["metadata"]["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _delete(self, resource: ResourceType, namespace: str, name: str, propagation: str) -> Stored:
        current = self.get(resource, namespace, name)
        uid = current.obj["metadata"]["uid"]
        if resource is resources.NAMESPACES:
            for kind in resources.ALL:
                if kind.namespaced:
                    for stored in self.state.store.items(kind, name):
                        self.state.store.remove(kind, stored.namespace, stored.name)
            return self.state.store.remove(resource, "", name)
        dependents = [
            (kind, stored)
            for kind in _DEPENDENT_KINDS
            if resource.namespaced
            for stored in self.state.store.items(kind, namespace)
            if any(ref.get("uid") == uid for ref in stored.obj["metadata"].get("ownerReferences") or [])
        ]
        if propagation == "Orphan":
            for kind, stored in dependents:
                orphan = stored.thaw()
                orphan["metadata"]["ownerReferences"] = [
                    ref for ref in orphan["metadata"]["ownerReferences"] if ref.get("uid") != uid
                ]
                if not orphan["metadata"]["ownerReferences"]:
                    del orphan["metadata"]["ownerReferences"]
                self.state.write(kind, orphan)
        if propagation == "Foreground":
            self._delete_dependents(dependents)
        removed = self.state.store.remove(resource, namespace, name)
        if propagation == "Background":
            self._delete_dependents(dependents)
        if resource is resources.NODES:
            # PodGC: pods bound to a node that is gone are deleted (their controllers replace them).
            for stored in self.state.store.items(resources.PODS):
                if (stored.obj.get("spec") or {}).get("nodeName") == name:
                    self.state.store.remove(resources.PODS, stored.namespace, stored.name)
        return removed

    def _delete_dependents(self, dependents: list[tuple[ResourceType, Stored]]) -> None:
        for kind, stored in dependents:
            if self.state.get(kind, stored.namespace, stored.name) is not None:
                self._delete(kind, stored.namespace, stored.name, "Background")

    def delete_collection(
        self,
        resource: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        *,
        propagation: str | None = None,
        dry_run: bool = False,
    ) -> JsonObject:
        with self.lock:
            items, revision, _, _ = self.list_objects(resource, namespace, labels, fields)
            if not dry_run:
                for stored in items:
                    if self.state.get(resource, stored.namespace, stored.name) is not None:
                        self._delete(
                            resource,
                            stored.namespace,
                            stored.name,
                            propagation or resource.default_propagation,
                        )
                self.settle()
            return {
                "kind": resource.list_kind,
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(revision)},
                "items": [s.thaw() for s in items],
            }

    def background_delete(self, resource: ResourceType, namespace: str, name: str) -> None:
        if self.state.get(resource, namespace, name) is not None:
            self._delete(resource, namespace, name, "Background")

    # ---- direct access for tests ----------------------------------------------------------------

    def put_object(self, obj: JsonObject, *, settle: bool = True) -> Stored:
        """Stores an object as given (status included); fills what the server would."""
        resource = resources.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if resource is None:
            raise ValueError(f"the emulator does not serve {obj.get('apiVersion')}/{obj.get('kind')}")
        obj = json.loads(json.dumps(obj))
        metadata = obj.setdefault("metadata", {})
        with self.lock:
            existing = self.state.get(
                resource, metadata.get("namespace", "") if resource.namespaced else "", metadata["name"]
            )
            metadata.setdefault("uid", existing.obj["metadata"]["uid"] if existing else self.state.new_uid())
            metadata.setdefault("creationTimestamp", self.state.timestamp())
            if resource.has_generation:
                metadata.setdefault("generation", 1)
            if resource is resources.PODS:
                admit_pod(obj)
                if obj["spec"].get("nodeName") and not obj["status"].get("containerStatuses"):
                    start_pod(self.state, obj, record=False)
            elif resource is resources.NODES:
                sync_node_taints(obj)
            else:
                apply_defaults(resource, obj)
                if resource is resources.JOBS and not (obj["spec"].get("selector")):
                    add_job_selector(obj)
            stored = self.state.write(resource, obj)
            if settle:
                self.settle()
            return stored

    def mutate(
        self, resource: ResourceType, namespace: str, name: str, change: Callable[[JsonObject], None]
    ) -> Stored:
        """Applies `change` to a private copy of the object and stores it (status included)."""
        with self.lock:
            obj = self.get(resource, namespace, name).thaw()
            change(obj)
            stored = self.state.write(resource, obj)
            self.settle()
            return stored

    def finish_pod(
        self, namespace: str, name: str, *, succeeded: bool, exit_code: int | None = None, logs: str = ""
    ) -> None:
        now = self.state.timestamp()
        self.mutate(
            resources.PODS,
            namespace,
            name,
            lambda pod: finish_pod(pod, succeeded=succeeded, now=now, exit_code=exit_code, logs=logs),
        )

    # ---- controllers --------------------------------------------------------------------------

    def _noticed(self, change: Any) -> None:
        resource, obj, deleted = change.resource, change.new.obj, change.type == "DELETED"
        namespace, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if resource is resources.PODS:
            self.scheduler.notice(obj, deleted)
            owner = controller_of(obj)
            if owner and owner.get("kind") == "ReplicaSet":
                self._dirty[(resources.REPLICASETS, namespace, owner["name"])] = None
            elif owner and owner.get("kind") == "Job":
                self._dirty[(resources.JOBS, namespace, owner["name"])] = None
        elif resource is resources.REPLICASETS:
            if not deleted:
                self._dirty[(resources.REPLICASETS, namespace, name)] = None
            owner = controller_of(obj)
            if owner and owner.get("kind") == "Deployment":
                self._dirty[(resources.DEPLOYMENTS, namespace, owner["name"])] = None
        elif resource in (resources.DEPLOYMENTS, resources.JOBS) and not deleted:
            self._dirty[(resource, namespace, name)] = None
        elif resource is resources.NODES:
            self.scheduler.retry_all = True
            if not deleted:
                self._dirty[(resources.NODES, "", name)] = None
        elif resource is resources.PVCS and not deleted:
            self.scheduler.retry_all = True

    def settle(self) -> None:
        """Runs controllers and the scheduler until no write is left to react to."""
        with self.lock:
            for _ in range(_MAX_SETTLE_STEPS):
                if self._dirty:
                    key = next(iter(self._dirty))
                    del self._dirty[key]
                    self._reconcile(*key)
                elif self.scheduler.retry_all or self.scheduler.untried:
                    self.scheduler.run()
                else:
                    return
            raise ApiError(
                500, status_body(500, "InternalError", "the emulator's controllers did not settle")
            )

    def _reconcile(self, resource: ResourceType, namespace: str, name: str) -> None:
        if resource is resources.DEPLOYMENTS:
            reconcile_deployment(self.state, namespace, name)
        elif resource is resources.REPLICASETS:
            reconcile_replicaset(self.state, namespace, name, self.background_delete)
        elif resource is resources.JOBS:
            reconcile_job(self.state, namespace, name, self.background_delete)
        elif resource is resources.NODES:
            stored = self.state.get(resources.NODES, "", name)
            if stored is not None:
                node = stored.thaw()
                if sync_node_taints(node):
                    self.state.write(resources.NODES, node)
