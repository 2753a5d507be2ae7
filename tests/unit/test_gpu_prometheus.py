"""PrometheusGpuQuery against a fake Prometheus HTTP API (tests/gpu_fakes/prometheus_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import BackendUnavailable, ConfigurationError
from backends.gpu.prometheus import PrometheusGpuQuery, prometheus_duration
from tests.gpu_fakes.http_server import dead_url, serving
from tests.gpu_fakes.prometheus_api import FakePrometheus

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

H100_0 = {
    "gpu": "0",
    "UUID": "GPU-5c7a3b1e-9f2d-4b8a-a1c3-0d4e5f607182",
    "device": "nvidia0",
    "modelName": "NVIDIA H100 80GB HBM3",
    "hostname": "gpu-h100-07",
    "instance": "10.0.3.17:9400",
    "job": "dcgm-exporter",
}
H100_1 = {**H100_0, "gpu": "1", "UUID": "GPU-7e8f9a0b-1c2d-4e3f-b4a5-96c7d8e9f0a1", "device": "nvidia1"}
# Relabelled away from Hostname: the node label places it.
A100_MIG = {
    "gpu": "0",
    "UUID": "GPU-d6dd33b9-e50e-997c-f303-c8f7312fa498",
    "device": "nvidia0",
    "modelName": "NVIDIA A100-SXM4-80GB",
    "GPU_I_PROFILE": "1g.10gb",
    "GPU_I_ID": "9",
    "node": "dgx-a100-02",
    "instance": "10.0.3.20:9400",
    "namespace": "ml-alice",
    "pod": "notebook-0",
}
# No host label at all: the host of `instance`.
L40S = {"gpu": "3", "UUID": "GPU-l40s", "modelName": "NVIDIA L40S", "instance": "l40s-01.lab:9400"}

SERIES = {
    "DCGM_FI_DEV_GPU_UTIL": [(H100_0, "71.25"), (H100_1, "0"), (L40S, "NaN")],
    "DCGM_FI_DEV_FB_USED": [(H100_0, "60213.5"), (H100_1, "0"), (A100_MIG, "4096")],
    "DCGM_FI_DEV_FB_FREE": [(H100_0, "20772.5"), (H100_1, "80986"), (A100_MIG, "5647")],
    "DCGM_FI_DEV_POWER_USAGE": [(H100_0, "540.125"), (H100_1, "71.5"), (L40S, "88")],
    "DCGM_FI_DEV_GPU_TEMP": [(H100_0, "58.5"), (H100_1, "29")],
    "DCGM_FI_PROF_GR_ENGINE_ACTIVE": [(H100_0, "0.70"), (A100_MIG, "0.125")],
}


def test_averages_over_the_window_for_every_gpu() -> None:
    with serving(FakePrometheus(SERIES)) as (base, received):
        query = PrometheusGpuQuery(base, selector='cluster="lab"', clock=lambda: T0)
        samples = query.samples("1h")
    assert [request.query["query"][0] for request in received] == [
        'avg_over_time(DCGM_FI_DEV_GPU_UTIL{cluster="lab"}[1h])',
        'avg_over_time(DCGM_FI_DEV_FB_USED{cluster="lab"}[1h])',
        'avg_over_time(DCGM_FI_DEV_FB_FREE{cluster="lab"}[1h])',
        'avg_over_time(DCGM_FI_DEV_POWER_USAGE{cluster="lab"}[1h])',
        'avg_over_time(DCGM_FI_DEV_GPU_TEMP{cluster="lab"}[1h])',
        'avg_over_time(DCGM_FI_PROF_GR_ENGINE_ACTIVE{cluster="lab"}[1h])',
    ]
    assert {request.query["time"][0] for request in received} == {f"{T0.timestamp():.3f}"}
    assert {request.path for request in received} == {"/api/v1/query"}
    assert [
        (s.host, s.gpu, s.utilization_pct, s.memory_used_mib, s.memory_total_mib, s.power_w, s.temperature_c)
        for s in samples
    ] == [
        ("dgx-a100-02", "0/9", 12.5, 4096.0, 9743.0, None, None),
        ("gpu-h100-07", "0", 71.25, 60213.5, 80986.0, 540.125, 58.5),
        ("gpu-h100-07", "1", 0.0, 0.0, 80986.0, 71.5, 29.0),
        ("l40s-01.lab", "3", None, None, None, 88.0, None),  # NaN utilisation stays unknown
    ]
    mig = samples[0]
    assert (mig.mig_profile, mig.namespace, mig.pod, mig.source, mig.at) == (
        "1g.10gb",
        "ml-alice",
        "notebook-0",
        "prometheus",
        T0,
    )
    assert samples[1].model == "NVIDIA H100 80GB HBM3"


def test_an_empty_selector_and_a_timedelta_window() -> None:
    with serving(FakePrometheus({})) as (base, received):
        assert PrometheusGpuQuery(base).samples(timedelta(minutes=90), at=T0) == []
    assert received[0].query["query"] == ["avg_over_time(DCGM_FI_DEV_GPU_UTIL{}[5400s])"]


def test_an_http_error_carries_the_servers_message() -> None:
    body = (
        '{"status":"error","errorType":"execution","error":"query processing would load too many '
        'samples into memory in query execution"}'
    )
    with (
        serving(FakePrometheus(SERIES, fail_with=(422, body))) as (base, _),
        pytest.raises(BackendUnavailable) as raised,
    ):
        PrometheusGpuQuery(base).samples("1h", at=T0)
    assert raised.value.message == (
        f"Prometheus at {base} answered HTTP 422: execution: query processing would load too many "
        "samples into memory in query execution"
    )
    assert raised.value.retry_after is None


def test_a_proxy_error_page_is_quoted() -> None:
    page = "<html><body><h1>503 Service Unavailable</h1></body></html>"
    with (
        serving(FakePrometheus(SERIES, fail_with=(503, page))) as (base, _),
        pytest.raises(BackendUnavailable) as raised,
    ):
        PrometheusGpuQuery(base).samples("1h", at=T0)
    assert raised.value.message == f"Prometheus at {base} answered HTTP 503: {page}"
    assert raised.value.retry_after == 60.0


def test_status_error_in_a_200_answer() -> None:
    body = '{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}'
    with (
        serving(FakePrometheus(SERIES, fail_with=(200, body))) as (base, _),
        pytest.raises(BackendUnavailable) as raised,
    ):
        PrometheusGpuQuery(base).samples("1h", at=T0)
    assert raised.value.message == (
        f"Prometheus at {base} refused the query: timeout: query timed out in expression evaluation"
    )


def test_an_unreachable_server() -> None:
    base = dead_url(path="")
    with pytest.raises(BackendUnavailable) as raised:
        PrometheusGpuQuery(base, timeout_s=2).samples("1h", at=T0)
    assert raised.value.message == (
        f"Prometheus at {base} refused the connection (is Prometheus running and listening on that "
        "port?); GPU use over time cannot be shown until it answers"
    )


@pytest.mark.parametrize("window", ["1 hour", "1h) or vector(1", "", "-5m"])
def test_windows_that_are_not_durations_are_refused(window: str) -> None:
    with pytest.raises(ConfigurationError):
        prometheus_duration(window)


def test_durations() -> None:
    assert prometheus_duration("1h30m") == "1h30m"
    assert prometheus_duration(timedelta(days=1)) == "86400s"


@pytest.mark.parametrize("selector", ['cluster="a"}[5m]) or vector(1) #', "cluster=a", 'x="1"\n'])
def test_selectors_that_could_change_the_query_are_refused(selector: str) -> None:
    with pytest.raises(ConfigurationError):
        PrometheusGpuQuery("http://prometheus:9090", selector=selector)


def test_selectors_with_several_matchers() -> None:
    query = PrometheusGpuQuery("http://prometheus:9090", selector='cluster="a", namespace=~"gpu-.*",')
    assert query.query_for("X", "1h") == 'avg_over_time(X{cluster="a", namespace=~"gpu-.*"}[1h])'
