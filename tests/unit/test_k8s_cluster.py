"""The wire layer's pure parts: API warnings and which kinds may be created."""

from __future__ import annotations

import pytest
from urllib3 import HTTPHeaderDict

from backends.errors import RequestInvalid
from backends.k8s.cluster import api_warnings, kind_of


def test_api_warnings_are_read_from_every_warning_header() -> None:
    headers = HTTPHeaderDict()
    headers.add("Warning", '299 - "spec.template.spec.containers[0].env[1]: hides earlier value"')
    headers.add("Warning", '299 - "unknown field \\"spec.foo\\"", 299 - "second in one line"')
    headers.add("Content-Type", "application/json")
    assert api_warnings(headers) == [
        "spec.template.spec.containers[0].env[1]: hides earlier value",
        'unknown field "spec.foo"',
        "second in one line",
    ]
    assert api_warnings({}) == []


def test_only_our_kinds_are_created() -> None:
    assert kind_of({"kind": "Job"}).plural == "jobs"
    assert kind_of({"kind": "Deployment"}).prefix == "/apis/apps/v1"
    with pytest.raises(RequestInvalid, match="not 'ClusterRoleBinding'"):
        kind_of({"kind": "ClusterRoleBinding"})
