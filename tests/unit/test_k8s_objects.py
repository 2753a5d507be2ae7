"""Kubernetes objects as the API returns them (the builders other k8s tests use) and their decoding.

The builders write plain dicts in the API's JSON shape (camelCase, quantities as strings); tests
decode them through the same msgspec decoders the backend uses on the wire.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from backends.k8s.objects import Event, Node, Pod, count, decode_list, decode_object, quantity
from tests.helpers.k8s_objects import decoded, node, pod, waiting


def test_a_pod_list_decodes_the_fields_we_read_and_ignores_the_rest() -> None:
    raw = pod(
        "train-abc",
        node_name="gpu-1",
        gpus=4,
        container_statuses=[waiting("CrashLoopBackOff", "back-off 5m0s", restarts=7, last_exit=137)],
    )
    raw["metadata"]["managedFields"] = [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]
    raw["spec"]["dnsPolicy"] = "ClusterFirst"
    (decoded_pod,) = decoded([raw], Pod)
    assert decoded_pod.metadata.name == "train-abc"
    assert decoded_pod.spec.node_name == "gpu-1"
    assert decoded_pod.spec.containers[0].resources.limits == {"nvidia.com/gpu": "4"}
    status = decoded_pod.status.container_statuses[0]
    assert status.restart_count == 7
    assert status.state.waiting is not None and status.state.waiting.reason == "CrashLoopBackOff"
    assert status.last_state.terminated is not None and status.last_state.terminated.exit_code == 137
    assert decoded_pod.metadata.creation_timestamp is not None
    assert decoded_pod.metadata.creation_timestamp.year == 2026


def test_a_dict_and_its_json_decode_to_the_same_object() -> None:
    raw = node(
        "gpu-1", product="NVIDIA-A100-SXM4-80GB", gpus=8, taints=[{"key": "a", "effect": "NoSchedule"}]
    )
    assert decode_object(raw, Node) == decode_object(json.dumps(raw).encode(), Node)


def test_an_empty_list_and_missing_fields_decode_to_defaults() -> None:
    assert decode_list(b'{"kind":"PodList","items":null}', Pod) == []
    assert decode_list(b'{"kind":"PodList"}', Pod) == []
    (bare,) = decode_list(b'{"items":[{}]}', Event)
    assert bare.reason == "" and bare.last_seen is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", Decimal(4)),
        ("500m", Decimal("0.5")),
        ("64Gi", Decimal(64 * 1024**3)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("2E", Decimal(2 * 1000**6)),
        ("1.5Mi", Decimal("1.5") * 1024**2),
        ("garbage", Decimal(0)),
        ("", Decimal(0)),
    ],
)
def test_quantities_read_as_the_api_writes_them(text: str, expected: Decimal) -> None:
    assert quantity(text) == expected


def test_whole_unit_counts_round_fractions_up() -> None:
    assert count("2") == 2
    assert count("1500m") == 2
    assert count("0") == 0
