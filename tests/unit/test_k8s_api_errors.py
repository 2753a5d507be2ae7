"""Kubernetes API failures (Status bodies as the API server writes them) become our errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)
from backends.k8s.api_errors import Action, translate_api_error, translate_transport_error

CREATE = Action("create", "Deployments", "research", "llm", as_user="alice")


def failure(code: int, reason: str, message: str, **details: Any) -> ApiException:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        body["details"] = details
    body["code"] = code
    error = ApiException(status=code, reason=reason, body=json.dumps(body))
    error.headers = {"Retry-After": "7"} if code == 429 else {}
    return error


def test_rbac_refusal_names_who_what_and_where() -> None:
    error = failure(
        403,
        "Forbidden",
        'deployments.apps is forbidden: User "alice" cannot create resource "deployments" in API group '
        '"apps" in the namespace "research"',
    )
    translated = translate_api_error(error, CREATE)
    assert isinstance(translated, PermissionDenied)
    assert translated.message.startswith(
        "alice may not create Deployments llm in namespace research: the cluster's RBAC refused it"
    )
    assert "Ask the namespace's admins for a Role" in translated.message


def test_a_refused_impersonation_is_the_bots_configuration() -> None:
    error = failure(
        403,
        "Forbidden",
        'users "alice" is forbidden: User "system:serviceaccount:concierge:bot" cannot impersonate '
        'resource "users" in API group "" at the cluster scope',
    )
    translated = translate_api_error(error, CREATE)
    assert isinstance(translated, ConfigurationError)
    assert "may not act as alice" in translated.message and "`impersonate` verb" in translated.message


def test_invalid_fields_are_named() -> None:
    error = failure(
        422,
        "Invalid",
        'Deployment.apps "llm" is invalid: spec.template.spec.containers[0].image: Required value',
        name="llm",
        kind="Deployment",
        causes=[
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.template.spec.containers[0].image",
            }
        ],
    )
    translated = translate_api_error(error, Action("create", "Deployments", "research", "llm", "alice", True))
    assert isinstance(translated, RequestInvalid)
    assert translated.message == (
        "the cluster refused the Deployment llm (dry run): field spec.template.spec.containers[0].image "
        "invalid: Required value"
    )


def test_an_existing_name_suggests_another() -> None:
    error = failure(409, "AlreadyExists", 'deployments.apps "llm" already exists')
    translated = translate_api_error(error, CREATE)
    assert isinstance(translated, BackendRejected)
    assert (
        "Deployment llm already exists in namespace research; choose another name (e.g. `named llm-2`)"
        in (translated.message)
    )


def test_a_missing_namespace_on_create_and_a_missing_object_on_delete() -> None:
    missing_ns = translate_api_error(failure(404, "NotFound", 'namespaces "nope" not found'), CREATE)
    assert (
        isinstance(missing_ns, RequestInvalid) and "namespace research does not exist" in missing_ns.message
    )
    gone = translate_api_error(
        failure(404, "NotFound", 'jobs.batch "x" not found'),
        Action("delete", "Jobs", "research", "x", "alice"),
    )
    assert isinstance(gone, JobNotFound)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (401, ConfigurationError),
        (429, BackendUnavailable),
        (500, BackendUnavailable),
        (503, BackendUnavailable),
    ],
)
def test_server_side_trouble_is_unavailable_or_configuration(code: int, kind: type[Exception]) -> None:
    translated = translate_api_error(failure(code, "X", "trouble"), Action("list", "pods"))
    assert isinstance(translated, kind)
    if code == 429:
        assert isinstance(translated, BackendUnavailable) and translated.retry_after == 7.0


def test_a_quota_refusal_says_so() -> None:
    error = failure(403, "Forbidden", 'pods "x" is forbidden: exceeded quota: gpu-quota, requested: ...')
    translated = translate_api_error(error, Action("create", "Jobs", "research", "x", "alice"))
    assert isinstance(translated, BackendRejected) and "ResourceQuota" in translated.message


def test_a_body_that_is_not_a_status_still_reads() -> None:
    error = ApiException(status=502, reason="Bad Gateway", body="<html>proxy error</html>")
    translated = translate_api_error(error, Action("list", "pods"))
    assert isinstance(translated, BackendUnavailable) and "proxy error" in translated.message


def test_unreachable_api_is_unavailable() -> None:
    cause = urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    translated = translate_transport_error(cause, Action("list", "pods"), "https://10.0.0.1:6443")
    assert isinstance(translated, BackendUnavailable)
    assert translated.message.startswith(
        "the Kubernetes API at https://10.0.0.1:6443 could not be reached to list pods"
    )
