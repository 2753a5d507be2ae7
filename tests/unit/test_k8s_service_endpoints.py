"""A Service's EndpointSlices → the scrape URLs of its ready pods (backends/k8s/service_endpoints.py).

Slices are written as the API returns them (JSON, camelCase, Go's nulls) and decoded by the same
msgspec decoder the LIST uses.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.errors import ConfigurationError
from backends.k8s.objects import EndpointSlice, decode_list
from backends.k8s.service_endpoints import ServiceRef, scrape_urls

DCGM = ServiceRef("gpu-operator", "nvidia-dcgm-exporter")


def endpoint(address: str, ready: bool | None = True, pod: str | None = None, **conditions: bool) -> Any:
    made: dict[str, Any] = {"addresses": [address], "conditions": {}}
    if ready is not None:
        made["conditions"] = {"ready": ready, "serving": ready, "terminating": False, **conditions}
    if pod:
        made["targetRef"] = {"kind": "Pod", "namespace": "gpu-operator", "name": pod}
    return made


def slices(*items: dict[str, Any]) -> list[EndpointSlice]:
    """Through the LIST decoder, as `KubeApi.list_of` decodes the API's answer."""
    body = {"kind": "EndpointSliceList", "apiVersion": "discovery.k8s.io/v1", "items": list(items)}
    return decode_list(json.dumps(body).encode(), EndpointSlice)


def a_slice(
    name: str, endpoints: list[Any] | None, ports: list[Any] | None = None, family: str = "IPv4"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "gpu-operator"},
        "addressType": family,
        "endpoints": endpoints,
        "ports": [{"name": "metrics", "port": 9400, "protocol": "TCP"}] if ports is None else ports,
    }


def test_ready_and_unknown_endpoints_of_every_slice_are_scraped_and_not_ready_ones_skipped() -> None:
    found = slices(
        a_slice(
            "dcgm-a", [endpoint("10.0.1.5"), endpoint("10.0.2.5", ready=False), endpoint("10.0.3.5", None)]
        ),
        a_slice(
            "dcgm-b",
            [
                endpoint("10.0.4.5", ready=False, terminating=True),
                endpoint("10.0.5.5"),
            ],
        ),
    )
    assert scrape_urls(found, DCGM) == [
        "http://10.0.1.5:9400/metrics",
        "http://10.0.3.5:9400/metrics",
        "http://10.0.5.5:9400/metrics",
    ]


def test_a_slice_with_null_endpoints_and_ports_gives_nothing() -> None:
    # Go writes a slice with no endpoints (the controller's placeholder) as "endpoints": null.
    assert scrape_urls(slices(a_slice("dcgm-empty", None, None)), DCGM) == []
    assert scrape_urls(slices(), DCGM) == []


def test_a_pod_in_an_ipv4_and_an_ipv6_slice_is_scraped_once_over_ipv4() -> None:
    found = slices(
        a_slice(
            "dcgm-v6", [endpoint("fd00::5", pod="dcgm-x"), endpoint("fd00::6", pod="dcgm-y")], family="IPv6"
        ),
        a_slice("dcgm-v4", [endpoint("10.0.1.5", pod="dcgm-x")]),
    )
    assert scrape_urls(found, DCGM) == ["http://10.0.1.5:9400/metrics", "http://[fd00::6]:9400/metrics"]


def test_the_same_pod_in_two_slices_while_the_controller_rebalances_is_scraped_once() -> None:
    found = slices(
        a_slice("dcgm-a", [endpoint("10.0.1.5", pod="dcgm-x")]),
        a_slice("dcgm-b", [endpoint("10.0.1.5", pod="dcgm-x"), endpoint("10.0.1.6")]),
    )
    assert scrape_urls(found, DCGM) == ["http://10.0.1.5:9400/metrics", "http://10.0.1.6:9400/metrics"]


@pytest.mark.parametrize(
    ("ports", "wanted", "url"),
    [
        ([{"name": "metrics", "port": 9500}], None, "http://10.0.1.5:9500/metrics"),  # the Helm chart's name
        ([{"name": "gpu-metrics", "port": 9400}], None, "http://10.0.1.5:9400/metrics"),  # GPU operator's
        ([], None, "http://10.0.1.5:9400/metrics"),
        (
            [{"name": "http", "port": 80}, {"name": "gpu-metrics", "port": 9401}],
            "gpu-metrics",
            "http://10.0.1.5:9401/metrics",
        ),
        ([{"name": "metrics", "port": 9400}], 9411, "http://10.0.1.5:9411/metrics"),
        ([{"name": "metrics", "port": 9400}], "9412", "http://10.0.1.5:9412/metrics"),
    ],
)
def test_the_port_is_the_named_slice_port_a_number_or_metrics_else_9400(
    ports: list[Any], wanted: str | int | None, url: str
) -> None:
    found = slices(a_slice("dcgm-a", [endpoint("10.0.1.5")], ports))
    assert scrape_urls(found, DCGM, wanted) == [url]


def test_a_port_name_the_service_does_not_have_is_a_configuration_error_naming_its_ports() -> None:
    found = slices(a_slice("dcgm-a", [endpoint("10.0.1.5")], [{"name": "gpu-metrics", "port": 9400}]))
    with pytest.raises(ConfigurationError) as caught:
        scrape_urls(found, DCGM, "metricz")
    assert caught.value.message == (
        "Service gpu-operator/nvidia-dcgm-exporter has no port named 'metricz' (its EndpointSlices "
        "list: gpu-metrics 9400); set gpu.dcgm.service_port to one of those names or to the pods' "
        "port number"
    )


def test_a_missing_port_name_is_no_error_while_no_endpoint_is_ready() -> None:
    found = slices(a_slice("dcgm-a", [endpoint("10.0.1.5", ready=False)], [{"name": "x", "port": 1}]))
    assert scrape_urls(found, DCGM, "metricz") == []


def test_a_service_is_named_namespace_slash_name() -> None:
    assert ServiceRef.parse(" gpu-operator/nvidia-dcgm-exporter ") == DCGM
    assert str(DCGM) == "gpu-operator/nvidia-dcgm-exporter"
    for text in ("nvidia-dcgm-exporter", "/name", "ns/", "a/b/c"):
        with pytest.raises(ConfigurationError, match="namespace/name"):
            ServiceRef.parse(text)
