"""One request, from path and headers to a response: authentication, impersonation, RBAC, the verb.

The order is the apiserver's filter chain: bearer token → 401; Impersonate-* headers → `impersonate`
checks for the caller → the request runs as the impersonated user (plus `system:authenticated`);
RBAC on (verb, group, resource/subresource, namespace, name) → 403 with the apiserver's text;
then the handler. `dryRun=All` passes admission and validation and stores nothing. Every request
lands in the request log with the identity it was made as, so tests can count calls per poll and
check who made them.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.k8s_emulator import resources
from tests.k8s_emulator.cluster import Cluster
from tests.k8s_emulator.errors import ApiError
from tests.k8s_emulator.rbac import (
    Attributes,
    Authorizer,
    UserInfo,
    authenticated,
    forbidden_reason,
    impersonation_checks,
)
from tests.k8s_emulator.routes import Route, parse_path
from tests.k8s_emulator.selectors import parse_field_selector, parse_label_selector
from tests.k8s_emulator.store import Stored
from tests.k8s_emulator.watch import WatchStream

JsonObject = dict[str, Any]

VERSION_INFO = {
    "major": "1",
    "minor": "30",
    "gitVersion": "v1.30.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-04-17T00:00:00Z",
    "goVersion": "go1.22.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it."""

    method: str
    path: str
    query: Mapping[str, str]
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection ("" if not a resource)
    resource: str  # plural, "" for non-resource paths
    subresource: str
    namespace: str | None
    name: str
    user: str  # who authenticated (the token's user)
    groups: tuple[str, ...]
    impersonated_user: str | None
    impersonated_groups: tuple[str, ...]
    code: int

    @property
    def acting_user(self) -> str:
        """The identity RBAC judged: the impersonated user when there is one."""
        return self.impersonated_user or self.user


@dataclass
class Response:
    code: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    late_s: float = 0.0  # how long the server waits before sending it


@dataclass
class StreamResponse:
    lines: Iterator[bytes]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # names in lower case
    impersonate_groups: Sequence[str]
    body: bytes


def _json(code: int, obj: object, headers: dict[str, str] | None = None) -> Response:
    return Response(code, json.dumps(obj, separators=(",", ":")).encode(), headers or {})


def _list_body(
    resource_kind: str,
    api_version: str,
    items: list[Stored],
    revision: int,
    token: str,
    remaining: int | None,
) -> bytes:
    metadata: JsonObject = {"resourceVersion": str(revision)}
    if token:
        metadata["continue"] = token
        metadata["remainingItemCount"] = remaining
    head = json.dumps({"kind": resource_kind, "apiVersion": api_version, "metadata": metadata})[:-1]
    return head.encode() + b',"items":[' + b",".join(s.raw for s in items) + b"]}"


class Dispatcher:
    def __init__(self, cluster: Cluster, authorizer: Authorizer) -> None:
        self.cluster = cluster
        self.authorizer = authorizer
        self.tokens: dict[str, UserInfo] = {}
        self.request_log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        # (verb, resource plural) → seconds the answer waits after the request has run.
        self.late_answers: dict[tuple[str, str], float] = {}

    def handle(self, request: Request) -> Response | StreamResponse:
        route = parse_path(request.path)
        verb = ""
        actor: UserInfo | None = None
        impersonated: UserInfo | None = None
        code = 500
        try:
            if request.path in ("/version", "/version/", "/healthz", "/livez", "/readyz"):
                code = 200
                return (
                    _json(200, VERSION_INFO) if request.path.startswith("/version") else Response(200, b"ok")
                )
            actor = self._authenticate(request)
            user, impersonated = self._impersonate(actor, request)
            if request.path.rstrip("/") == _SSAR_PATH and request.method == "POST":
                code = 201
                return _json(201, self._access_review(user, request))
            if route is None:
                raise ApiError.no_route()
            verb = self._verb(request, route)
            self._authorize(user, verb, route)
            result = self._run(request, route, verb)
            code = result.code if isinstance(result, Response) else 200
            if isinstance(result, Response):  # done; a client with a shorter timeout never hears so
                result.late_s = self.late_answers.get((verb, route.resource.plural), 0.0)
            return result
        except ApiError as error:
            code = error.code
            return _json(error.code, error.body, error.headers)
        except Exception as error:  # an emulator bug: say so in the response, not with a reset connection
            traceback.print_exc()
            code = 500
            return _json(500, ApiError.internal(f"emulator bug: {error!r}").body)
        finally:
            self._record(request, route, verb, actor, impersonated, code)

    # ---- identity ------------------------------------------------------------------------------

    def _authenticate(self, request: Request) -> UserInfo:
        header = request.headers.get("authorization") or ""
        scheme, _, token = header.partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError.unauthorized()
        return user

    def _impersonate(self, actor: UserInfo, request: Request) -> tuple[UserInfo, UserInfo | None]:
        user = request.headers.get("impersonate-user") or ""
        groups = [g for g in request.impersonate_groups if g]
        if not user and not groups:
            return actor, None
        if not user:
            requested = " ".join(f"{{Group  {g}  authentication.k8s.io/v1  }}" for g in groups)
            raise ApiError.internal(f"requested [{requested}] without impersonating a user")
        for check in impersonation_checks(actor, user, groups):
            if self.authorizer.decide(check) is None:
                target = resources.IMPERSONATION_TARGETS[check.resource]
                raise ApiError.forbidden(target, check.name, forbidden_reason(check))
        impersonated = authenticated(user, groups)
        return impersonated, impersonated

    def _access_review(self, user: UserInfo, request: Request) -> JsonObject:
        review = self._body(request)
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        decision = self.authorizer.decide(
            Attributes(
                user,
                attributes.get("verb", ""),
                attributes.get("group", ""),
                attributes.get("resource", ""),
                attributes.get("subresource", ""),
                attributes.get("namespace", ""),
                attributes.get("name", ""),
            )
        )
        status: JsonObject = {"allowed": decision is not None}
        if decision is not None:
            status["reason"] = decision.describe()
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": review.get("spec") or {},
            "status": status,
        }

    # ---- authorization -------------------------------------------------------------------------

    @staticmethod
    def _verb(request: Request, route: Route) -> str:
        watching = request.query.get("watch", "") in _TRUE
        if request.method == "GET":
            if watching:
                return "watch"
            return "get" if route.name else "list"
        verbs = {"POST": "create", "PUT": "update", "PATCH": "patch"}
        if request.method in verbs:
            return verbs[request.method]
        if request.method == "DELETE":
            return "delete" if route.name else "deletecollection"
        raise ApiError.method_not_allowed(request.method, request.path)

    def _authorize(self, user: UserInfo, verb: str, route: Route) -> None:
        attributes = Attributes(
            user,
            verb,
            route.resource.group,
            route.resource.plural,
            route.subresource,
            route.authorization_namespace,
            route.name,
        )
        if self.authorizer.decide(attributes) is None:
            raise ApiError.forbidden(route.resource, route.name, forbidden_reason(attributes))

    # ---- the verbs -----------------------------------------------------------------------------

    @staticmethod
    def _body(request: Request) -> Any:
        try:
            return json.loads(request.body or b"null")
        except ValueError as error:
            raise ApiError.bad_request(f"the request body is not valid JSON: {error}") from None

    @staticmethod
    def _dry_run(request: Request, options: JsonObject | None = None) -> bool:
        values = [request.query["dryRun"]] if "dryRun" in request.query else []
        values += list((options or {}).get("dryRun") or [])
        for value in values:
            if value != "All":
                raise ApiError.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def _run(self, request: Request, route: Route, verb: str) -> Response | StreamResponse:
        cluster, resource, query = self.cluster, route.resource, request.query
        namespace = route.namespace or ""
        if route.subresource and route.subresource not in ("status", "scale"):
            raise ApiError.no_route()
        if route.subresource == "scale" and resource not in (resources.DEPLOYMENTS, resources.REPLICASETS):
            raise ApiError.no_route()
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(resource, query.get("fieldSelector", ""))
        if verb == "watch":
            if route.name:
                fields = (*fields, *parse_field_selector(resource, f"metadata.name={route.name}"))
            timeout = query.get("timeoutSeconds")
            stream = WatchStream(
                cluster.state.store,
                resource,
                route.namespace,
                labels,
                fields,
                query.get("resourceVersion"),
                float(timeout) if timeout else None,
            )
            return StreamResponse(stream.lines())
        if verb == "list":
            items, revision, token, remaining = cluster.list_objects(
                resource,
                route.namespace,
                labels,
                fields,
                int(query.get("limit") or 0),
                query.get("continue", ""),
            )
            return Response(
                200, _list_body(resource.list_kind, resource.api_version, items, revision, token, remaining)
            )
        if verb == "get":
            if route.subresource == "scale":
                return _json(200, cluster.scale(resource, namespace, route.name))
            return Response(200, cluster.get(resource, namespace, route.name).raw)
        if verb == "create":
            if route.name:
                raise ApiError.method_not_allowed(request.method, request.path)
            return _json(
                201, cluster.create(resource, namespace, self._body(request), dry_run=self._dry_run(request))
            )
        if verb == "update":
            body = self._body(request)
            if route.subresource == "scale":
                return _json(
                    200,
                    cluster.update_scale(
                        resource, namespace, route.name, body=body, dry_run=self._dry_run(request)
                    ),
                )
            if route.subresource == "status":
                return _json(
                    200,
                    cluster.replace_status(
                        resource, namespace, route.name, body, dry_run=self._dry_run(request)
                    ),
                )
            return _json(
                200, cluster.replace(resource, namespace, route.name, body, dry_run=self._dry_run(request))
            )
        if verb == "patch":
            content_type = request.headers.get("content-type") or ""
            body = self._body(request)
            if route.subresource == "scale":
                scale = cluster.update_scale(
                    resource,
                    namespace,
                    route.name,
                    content_type=content_type,
                    patch=body,
                    dry_run=self._dry_run(request),
                )
                return _json(200, scale)
            patched = cluster.patch(
                resource,
                namespace,
                route.name,
                content_type,
                body,
                dry_run=self._dry_run(request),
                subresource=route.subresource,
            )
            return _json(200, patched)
        options = self._body(request) if request.body else None
        options = options if isinstance(options, dict) else {}
        propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
        if propagation is None and (
            query.get("orphanDependents") in _TRUE or options.get("orphanDependents") is True
        ):
            propagation = "Orphan"
        dry_run = self._dry_run(request, options)
        if verb == "deletecollection":
            return _json(
                200,
                cluster.delete_collection(
                    resource, route.namespace, labels, fields, propagation=propagation, dry_run=dry_run
                ),
            )
        preconditions = options.get("preconditions") or {}
        code, body, headers = cluster.delete(
            resource,
            namespace,
            route.name,
            propagation=propagation,
            dry_run=dry_run,
            expected_uid=preconditions.get("uid"),
            expected_version=preconditions.get("resourceVersion"),
        )
        return _json(code, body, headers)

    def _record(
        self,
        request: Request,
        route: Route | None,
        verb: str,
        actor: UserInfo | None,
        impersonated: UserInfo | None,
        code: int,
    ) -> None:
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            verb=verb,
            resource=route.resource.plural if route else "",
            subresource=route.subresource if route else "",
            namespace=route.namespace if route else None,
            name=route.name if route else "",
            user=actor.name if actor else "",
            groups=actor.groups if actor else (),
            impersonated_user=impersonated.name if impersonated else None,
            impersonated_groups=tuple(g for g in request.impersonate_groups if g) if impersonated else (),
            code=code,
        )
        with self._log_lock:
            self.request_log.append(record)
