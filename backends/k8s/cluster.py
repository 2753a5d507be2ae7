"""The wire: every request this backend makes to the Kubernetes API, and nothing else.

Requests go through the client's own `ApiClient.param_serialize` / `call_api` (its
authentication, TLS, proxy and host handling) with our dict bodies and raw JSON answers: bodies
stay exactly the manifests shown to the person (no round trip through the client's models), and
LIST answers are decoded by msgspec (objects.py), the one step whose cost grows with the cluster.
Reads use the bot's client; writes use the person's (connection.py), with one
`Impersonate-Group` line per group added here. Every failure becomes one of our errors naming
the attempted action (api_errors.py). API warnings (`Warning: 299 - "…"` headers, e.g. from
admission on a dry run) are returned to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from urllib3 import HTTPHeaderDict

from backends.errors import BackendUnavailable, JobNotFound, RequestInvalid
from backends.k8s.api_errors import Action, translate_api_error, translate_transport_error
from backends.k8s.connection import IMPERSONATE_GROUP, ApiClients
from backends.k8s.objects import (
    Deployment,
    EndpointSlice,
    Event,
    Job,
    Named,
    Node,
    Pod,
    Service,
    decode_list,
    decode_object,
)
from backends.types import Identity

T = TypeVar("T")
_WARNING = re.compile(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Kind:
    prefix: str  # /api/v1, /apis/apps/v1
    plural: str
    title: str  # how sentences name many of them


KINDS = {
    "Deployment": Kind("/apis/apps/v1", "deployments", "Deployments"),
    "Service": Kind("/api/v1", "services", "Services"),
    "Job": Kind("/apis/batch/v1", "jobs", "Jobs"),
}
_LISTS: dict[type[Any], tuple[str, str]] = {
    Pod: ("/api/v1", "pods"),
    Node: ("/api/v1", "nodes"),
    Event: ("/api/v1", "events"),
    Deployment: ("/apis/apps/v1", "deployments"),
    Job: ("/apis/batch/v1", "jobs"),
    Service: ("/api/v1", "services"),
    EndpointSlice: ("/apis/discovery.k8s.io/v1", "endpointslices"),
}


def kind_of(manifest: dict[str, Any]) -> Kind:
    kind = manifest.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise RequestInvalid(f"GPU Concierge creates Deployments, Services and Jobs only, not {kind!r}")
    return KINDS[kind]


def api_warnings(headers: Any) -> list[str]:
    """The texts of `Warning: 299 - "…"` headers (RFC 7234 form, as the API server sends them)."""
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    return [match.group(1).replace('\\"', '"') for value in values for match in _WARNING.finditer(value)]


class KubeApi:
    def __init__(self, clients: ApiClients, timeout_s: float) -> None:
        self._clients = clients
        self._timeout = timeout_s

    def _send(
        self,
        client: ApiClient,
        method: str,
        path: str,
        action: Action,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
        groups: Sequence[str] = (),
    ) -> tuple[bytes, list[str]]:
        try:
            header_params = {"Accept": "application/json"}
            if body is not None:
                header_params["Content-Type"] = content_type
            verb, url, headers, payload, _ = client.param_serialize(
                method=method,
                resource_path=path,
                query_params=list(query),
                header_params=header_params,
                body=body,
                auth_settings=["BearerToken"],
            )
            sent: Any = headers
            if groups:
                sent = HTTPHeaderDict(headers)
                for group in groups:
                    sent.add(IMPERSONATE_GROUP, group)
            response = client.call_api(
                verb, url, header_params=sent, body=payload, _request_timeout=self._timeout
            )
            data = response.read() or b""  # type: ignore[no-untyped-call]
        except ApiException as e:
            raise translate_api_error(e, action) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise translate_transport_error(e, action, str(client.configuration.host)) from e
        if not 200 <= response.status <= 299:
            error = ApiException(http_resp=response)
            raise translate_api_error(error, action) from error
        return bytes(data), api_warnings(response.headers)

    # -- reads, as the bot ---------------------------------------------------------------------

    def list_of(
        self,
        item: type[T],
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[T]:
        prefix, plural = _LISTS[item]
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        query = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        action = Action("list", plural, namespace)
        data, _ = self._send(self._clients.bot(), "GET", path, action, query=query)
        try:
            return decode_list(data, item)
        except ValueError as e:  # msgspec.DecodeError: not JSON, or not a list of these objects
            raise BackendUnavailable(
                f"the Kubernetes API answered the {plural} LIST with something that is not a {plural} "
                f"list ({e}); is k8s.kubeconfig pointing at a Kubernetes API server?"
            ) from e

    def lookup(self, kind_name: str, namespace: str, name: str) -> Named | None:
        """One object by name, or None when the cluster has none (a GET as the bot)."""
        kind = KINDS[kind_name]
        action = Action("get", kind.title, namespace, name)
        path = f"{kind.prefix}/namespaces/{namespace}/{kind.plural}/{name}"
        try:
            data, _ = self._send(self._clients.bot(), "GET", path, action)
        except JobNotFound:
            return None
        try:
            return decode_object(data, Named)
        except ValueError as e:  # msgspec.DecodeError
            raise BackendUnavailable(
                f"the Kubernetes API answered the GET of {action.what} with something that is not "
                f"an object ({e})"
            ) from e

    # -- writes, as the person -------------------------------------------------------------------

    def create(self, manifest: dict[str, Any], identity: Identity, *, dry_run: bool) -> list[str]:
        kind = kind_of(manifest)
        metadata = manifest.get("metadata") or {}
        namespace = str(metadata.get("namespace") or "")
        client, user, groups = self._clients.person(identity)
        action = Action("create", kind.title, namespace, metadata.get("name"), as_user=user, dry_run=dry_run)
        path = f"{kind.prefix}/namespaces/{namespace}/{kind.plural}"
        query = [("dryRun", "All")] if dry_run else []
        query.append(("fieldValidation", "Strict"))
        _, warnings = self._send(client, "POST", path, action, query=query, body=manifest, groups=groups)
        return warnings

    def delete(self, kind_name: str, namespace: str, name: str, identity: Identity) -> None:
        kind = KINDS[kind_name]
        client, user, groups = self._clients.person(identity)
        action = Action("delete", kind.title, namespace, name, as_user=user)
        path = f"{kind.prefix}/namespaces/{namespace}/{kind.plural}/{name}"
        # Background: the call returns at once and the garbage collector removes the pods (batch/v1
        # Jobs would otherwise orphan theirs).
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        self._send(client, "DELETE", path, action, body=body, groups=groups)

    def scale(self, namespace: str, name: str, replicas: int, identity: Identity) -> None:
        client, user, groups = self._clients.person(identity)
        action = Action("scale", "Deployments", namespace, name, as_user=user)
        path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
        body = {"spec": {"replicas": replicas}}
        self._send(
            client,
            "PATCH",
            path,
            action,
            body=body,
            content_type="application/merge-patch+json",
            groups=groups,
        )
