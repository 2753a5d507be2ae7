"""URL paths to (resource, namespace, name, subresource), as apiserver's RequestInfo reads them.

`/api/v1/namespaces/{ns}/pods/{name}/status`, `/apis/apps/v1/deployments` (all namespaces) and
`/api/v1/nodes/{name}` are one grammar. As in RequestInfo, the namespace of a request on a
Namespace is the Namespace itself, so a namespaced rule can grant `get` on its own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.k8s_emulator import resources
from tests.k8s_emulator.resources import ResourceType

SUBRESOURCES = {"status", "scale", "finalize"}


@dataclass(frozen=True)
class Route:
    resource: ResourceType
    namespace: str | None  # None: cluster-scoped, or a namespaced resource across all namespaces
    name: str = ""
    subresource: str = ""

    @property
    def authorization_namespace(self) -> str:
        if self.resource is resources.NAMESPACES:
            return self.name
        return self.namespace or ""


def parse_path(path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in SUBRESOURCES:
        resource = resources.by_path(group, version, rest[2])
        if resource is None or not resource.namespaced or len(rest) > 5:
            return None
        name = rest[3] if len(rest) > 3 else ""
        subresource = rest[4] if len(rest) > 4 else ""
        return Route(resource, rest[1], name, subresource)
    resource = resources.by_path(group, version, rest[0])
    if resource is None or len(rest) > 3:
        return None
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource.namespaced and name:
        return None  # a namespaced object needs its namespace in the path
    return Route(resource, None, name, subresource)
