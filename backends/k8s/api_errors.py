"""Kubernetes API failures as our errors, with what was attempted, by whom, and what to do.

The API server answers failures with a `Status` object (`reason`, `message`, `details.causes`);
the client raises `ApiException` carrying its HTTP status and that body, and urllib3 raises its own
errors when the server cannot be reached. Every call site names its `Action` (verb, resource,
namespace, the person impersonated), so a 403 reads "alice may not create Deployments in namespace
research", not "Forbidden". Impersonation refused is the bot's configuration, not the person's
permission, and is told apart by the RBAC message ("cannot impersonate").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client.exceptions import ApiException

from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConciergeError,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)

MAX_CAUSES = 3


@dataclass(frozen=True)
class Action:
    verb: str  # create, delete, scale, list
    resource: str  # plural, as people say it: "Deployments", "pods"
    namespace: str | None = None
    name: str | None = None
    as_user: str | None = None  # the person impersonated; None: the bot's own account
    dry_run: bool = False

    @property
    def who(self) -> str:
        return self.as_user or "the bot's Kubernetes account"

    @property
    def where(self) -> str:
        return f"in namespace {self.namespace}" if self.namespace else "across the cluster"

    @property
    def singular(self) -> str:
        return self.resource[:-1] if self.resource.endswith("s") else self.resource

    @property
    def what(self) -> str:
        named = f" {self.name}" if self.name else ""
        return f"{self.resource}{named} {self.where}"


def _status(error: ApiException) -> Mapping[str, Any]:
    body = error.body
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    if not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {"message": str(body)[:500]}
    return parsed if isinstance(parsed, dict) else {}


def _retry_after(error: ApiException) -> float | None:
    headers = error.headers or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _causes(status: Mapping[str, Any]) -> str:
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    if not isinstance(causes, list) or not causes:
        return ""
    described = []
    for cause in causes[:MAX_CAUSES]:
        if not isinstance(cause, dict):
            continue
        field = cause.get("field")
        message = cause.get("message") or cause.get("reason") or "invalid"
        described.append(f"field {field} invalid: {message}" if field else str(message))
    return "; ".join(described)


def translate_api_error(error: ApiException, action: Action) -> ConciergeError:
    """The error to raise (`from error`) for a failed API call."""
    status = _status(error)
    code = error.status or 0
    message = str(status.get("message") or error.reason or "no message")
    reason = str(status.get("reason") or "")
    trial = " (dry run)" if action.dry_run else ""
    if code == 401:
        return ConfigurationError(
            "the Kubernetes API refused the bot's credentials (401 Unauthorized): the token or "
            "certificate in its kubeconfig is wrong or expired; an admin must renew it"
        )
    if code == 403 and "impersonate" in message:
        return ConfigurationError(
            f"the bot's Kubernetes account may not act as {action.who} ({message}). An admin must grant "
            "it the `impersonate` verb on users and groups (a ClusterRole bound to the bot's account)"
        )
    if code == 403 and "exceeded quota" in message:
        return BackendRejected(
            f"namespace {action.namespace}'s ResourceQuota does not allow it{trial}: {message}. Ask for "
            "fewer GPUs, wait for other pods in the namespace to end, or ask its admins for more quota"
        )
    if code == 403:
        return PermissionDenied(
            f"{action.who} may not {action.verb} {action.what}{trial}: the cluster's RBAC refused it "
            f"({message}). Ask the namespace's admins for a Role that allows it, or use a namespace "
            "where you may"
        )
    if code == 404 and action.verb == "create":
        return RequestInvalid(
            f"namespace {action.namespace} does not exist on the cluster ({message}); name an existing "
            "namespace, or ask an admin to create it"
        )
    if code == 404:
        return JobNotFound(f"{action.what} was not found on the cluster ({message})")
    if code == 409 and reason == "AlreadyExists":
        name = action.name or "it"
        return BackendRejected(
            f"{action.singular} {name} already exists {action.where}; choose another name "
            f"(e.g. `named {name}-2`) or cancel the old one first"
        )
    if code == 422 or reason == "Invalid":
        causes = _causes(status)
        return RequestInvalid(
            f"the cluster refused the {action.singular}{' ' + action.name if action.name else ''}{trial}: "
            f"{causes or message}"
        )
    if code == 400:
        return RequestInvalid(f"the cluster could not accept {action.what}{trial}: {message}")
    if code == 409:
        return BackendRejected(f"the cluster refused to {action.verb} {action.what}: {message}; try again")
    if code == 429:
        return BackendUnavailable(
            f"the Kubernetes API is rate-limiting requests ({message}); try again shortly",
            retry_after=_retry_after(error),
        )
    if code == 0 or code >= 500 or code == 410:
        return BackendUnavailable(
            f"the Kubernetes API failed to {action.verb} {action.what} ({code or 'no answer'}: {message}); "
            "try again later",
            retry_after=_retry_after(error),
        )
    return BackendRejected(f"the cluster refused to {action.verb} {action.what} ({code} {reason}: {message})")


def translate_transport_error(error: Exception, action: Action, host: str) -> BackendUnavailable:
    detail = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
    if isinstance(error, urllib3.exceptions.ReadTimeoutError):  # it was sent: it may have been done
        done = "" if action.verb in ("get", "list") else "; it may have been done all the same"
        return BackendUnavailable(
            f"the Kubernetes API at {host} did not answer in time to {action.verb} {action.what} "
            f"({detail}){done}"
        )
    return BackendUnavailable(
        f"the Kubernetes API at {host} could not be reached to {action.verb} {action.what} ({detail}); "
        "check that the cluster is up and the bot's kubeconfig points at it, then try again"
    )
