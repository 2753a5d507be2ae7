"""The API resources the emulator serves, and what sets each apart.

One table instead of a class per kind: the store and the HTTP layer treat every resource the same,
and only the few facts that differ (scope, status subresource, default deletion propagation) live here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    # Writes through the main resource keep the stored status (status is its own subresource).
    has_status: bool = False
    # Spec changes bump metadata.generation (workload kinds).
    has_generation: bool = False
    # apiserver's DefaultGarbageCollectionPolicy: batch/v1 Jobs orphan their pods unless asked.
    default_propagation: str = "Background"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`schema.GroupResource.String()`: "deployments.apps", "pods"."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, has_status=True)
NODES = ResourceType("", "v1", "nodes", "Node", namespaced=False, has_status=True)
PODS = ResourceType("", "v1", "pods", "Pod", namespaced=True, has_status=True)
SERVICES = ResourceType("", "v1", "services", "Service", namespaced=True, has_status=True)
EVENTS = ResourceType("", "v1", "events", "Event", namespaced=True)
SECRETS = ResourceType("", "v1", "secrets", "Secret", namespaced=True)
PVCS = ResourceType(
    "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", namespaced=True, has_status=True
)
DEPLOYMENTS = ResourceType(
    "apps", "v1", "deployments", "Deployment", namespaced=True, has_status=True, has_generation=True
)
REPLICASETS = ResourceType(
    "apps", "v1", "replicasets", "ReplicaSet", namespaced=True, has_status=True, has_generation=True
)
JOBS = ResourceType(
    "batch",
    "v1",
    "jobs",
    "Job",
    namespaced=True,
    has_status=True,
    has_generation=True,
    default_propagation="Orphan",
)
# Written by the endpointslice controller in a real cluster; here tests write them (emulator.py).
ENDPOINTSLICES = ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", namespaced=True)

# Not served; only named in `impersonate` checks and their denials.
IMPERSONATION_TARGETS = {
    plural: ResourceType("", "v1", plural, plural.title(), namespaced=plural == "serviceaccounts")
    for plural in ("users", "groups", "serviceaccounts")
}

ALL: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    SERVICES,
    EVENTS,
    SECRETS,
    PVCS,
    DEPLOYMENTS,
    REPLICASETS,
    JOBS,
    ENDPOINTSLICES,
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in ALL}
_BY_KIND = {(r.api_version, r.kind): r for r in ALL}


def by_path(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))
