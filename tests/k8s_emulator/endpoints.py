"""EndpointSlices as the endpointslice controller writes them for a Service's pods.

The emulator runs no endpointslice controller (nothing here routes traffic to pods), so a test
writes the slices it wants, in the controller's form: the `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by` labels, an owner reference to the Service when it exists
(so deleting the Service deletes them), and the three conditions, where `ready` is `serving` and
not `terminating`. A Service may have several slices (at most 100 endpoints each by default,
one per address family on a dual-stack Service).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JsonObject = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER = "endpointslice-controller.k8s.io"


@dataclass(frozen=True)
class SliceEndpoint:
    address: str
    ready: bool | None = True  # None: the conditions are left unset (clients read that as ready)
    pod: str | None = None  # the Pod (in the slice's namespace) it stands for: its targetRef
    node: str | None = None
    terminating: bool = False

    def as_object(self, namespace: str) -> JsonObject:
        endpoint: JsonObject = {"addresses": [self.address]}
        if self.ready is not None:
            serving = self.ready or self.terminating
            endpoint["conditions"] = {
                "ready": self.ready and not self.terminating,
                "serving": serving,
                "terminating": self.terminating,
            }
        else:
            endpoint["conditions"] = {}
        if self.pod:
            endpoint["targetRef"] = {"kind": "Pod", "namespace": namespace, "name": self.pod}
        if self.node:
            endpoint["nodeName"] = self.node
        return endpoint


def endpoint_slice(
    namespace: str,
    name: str,
    service: str,
    endpoints: Iterable[SliceEndpoint],
    *,
    ports: Iterable[tuple[str, int]] = (("metrics", 9400),),
    address_type: str = "IPv4",
    owner: Mapping[str, Any] | None = None,
) -> JsonObject:
    """One slice of `service`; `owner` is the stored Service, when there is one."""
    metadata: JsonObject = {
        "name": name,
        "namespace": namespace,
        "labels": {SERVICE_NAME_LABEL: service, MANAGED_BY_LABEL: CONTROLLER},
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": metadata,
        "addressType": address_type,
        "endpoints": [endpoint.as_object(namespace) for endpoint in endpoints],
        "ports": [{"name": port_name, "port": number, "protocol": "TCP"} for port_name, number in ports],
    }
