"""What `concierge doctor` asks of Kubernetes, over the bot's own API client (connection.py).

Reachable and the credentials accepted: one `GET /version`-like call that needs authentication
(a SelfSubjectAccessReview, which every authenticated user may create). Then one
SelfSubjectAccessReview per permission the bot relies on (connection.py's docstring): reads of
nodes, pods, events, workloads, services and endpointslices cluster-wide, and `impersonate` on
users and groups. The review is the apiserver's own answer, so RBAC, ABAC or a webhook
authorizer are all judged as they will be at run time, without touching any object.
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3
from kubernetes.client import (
    ApiClient,
    AuthorizationV1Api,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
)
from kubernetes.client.exceptions import ApiException

from backends.k8s.api_errors import Action, translate_api_error, translate_transport_error
from backends.k8s.connection import factory_from_settings
from backends.k8s.settings import K8sSettings


@dataclass(frozen=True, slots=True)
class Permission:
    verb: str
    resource: str
    group: str = ""

    def __str__(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {qualified}"


NEEDED: tuple[Permission, ...] = (
    *(Permission(verb, "nodes") for verb in ("get", "list")),
    *(Permission(verb, "pods") for verb in ("get", "list")),
    Permission("list", "events"),
    Permission("list", "services"),
    Permission("list", "deployments", "apps"),
    Permission("list", "jobs", "batch"),
    Permission("list", "endpointslices", "discovery.k8s.io"),
    Permission("impersonate", "users"),
    Permission("impersonate", "groups"),
)


@dataclass(frozen=True, slots=True)
class Review:
    permission: Permission
    allowed: bool
    reason: str = ""


def access_reviews(settings: K8sSettings, needed: tuple[Permission, ...] = NEEDED) -> list[Review]:
    """One review per permission; raises our error when the API cannot be asked at all (unreachable,
    credentials refused), so the first failure says so once instead of once per permission."""
    client = factory_from_settings(settings)()
    try:
        return [_review(client, permission) for permission in needed]
    finally:
        client.close()  # type: ignore[no-untyped-call]


def _review(client: ApiClient, permission: Permission) -> Review:
    attributes = V1ResourceAttributes(
        verb=permission.verb, resource=permission.resource, group=permission.group
    )
    body = V1SelfSubjectAccessReview(spec=V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
    action = Action("create", "selfsubjectaccessreviews")
    try:
        answer = AuthorizationV1Api(client).create_self_subject_access_review(body)
    except ApiException as e:
        raise translate_api_error(e, action) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise translate_transport_error(e, action, client.configuration.host) from e
    status = answer.status
    return Review(permission, bool(status and status.allowed), (status.reason or "") if status else "")
