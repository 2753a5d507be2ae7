"""dcgm-exporter text → GpuSamples (fixtures in tests/fixtures/dcgm), scraping over HTTP, and the
round trip through our own exposition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backends.errors import BackendUnavailable
from backends.gpu.dcgm import EndpointFailure, parse_metrics, scrape
from backends.gpu.exposition import CONTENT_TYPE, render
from backends.gpu.nvml import NvmlSampler
from backends.gpu.samples import GpuSample
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Received, Reply, dead_url, serving
from tests.gpu_fakes.nvml import GIB, MIB, NOT_SUPPORTED, FakeMig, FakeNvml, h100

T0 = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def figures(sample: GpuSample) -> tuple[object, ...]:
    return (
        sample.host,
        sample.gpu,
        sample.utilization_pct,
        sample.memory_used_mib,
        sample.memory_total_mib,
        sample.power_w,
        sample.temperature_c,
        sample.mig_profile,
    )


def test_classic_hostname_label() -> None:
    samples = parse_metrics(fixture("classic-hostname.txt"), at=T0)
    assert [figures(s) for s in samples] == [
        ("ub20-a100-k8s", "0", 87.0, 4845.0, 40535.0, 248.337, 53.0, None),
        ("ub20-a100-k8s", "1", 0.0, 0.0, 40337.0, 54.827, 31.0, None),
    ]
    first = samples[0]
    assert (first.uuid, first.model, first.source, first.at) == (
        "GPU-34319582-d595-d1c7-d1d2-179bcfa61660",
        "NVIDIA A100-SXM4-40GB",
        "dcgm",
        T0,
    )
    assert (first.pod, first.namespace, first.container, first.pids) == (None, None, None, ())


def test_new_lowercase_hostname_label_and_reserved_memory() -> None:
    samples = parse_metrics(fixture("new-hostname.txt"), at=T0)
    assert [figures(s) for s in samples] == [
        ("gpu-h100-07", "0", 100.0, 78683.0, 81559.0, 612.548, 62.0, None),  # 78683 + 2303 + 573
        ("gpu-h100-07", "1", 0.0, 0.0, 81559.0, 71.096, 29.0, None),
    ]


def test_mig_instances_are_their_own_samples() -> None:
    samples = parse_metrics(fixture("mig.txt"), at=T0)
    assert [figures(s) for s in samples] == [
        # The MIG board has no GPU_UTIL: its engine activity stands in; memory is per instance.
        ("dgx-a100-02", "0", pytest.approx(51.2846), None, None, 187.512, 44.0, None),
        ("dgx-a100-02", "0/1", pytest.approx(99.5687), 30203.0, 40448.0, None, None, "3g.40gb"),
        ("dgx-a100-02", "0/9", 0.0, 0.0, 9743.0, None, None, "1g.10gb"),
        ("dgx-a100-02", "0/13", 25.0, 5132.0, 9743.0, None, None, "1g.10gb"),
        ("dgx-a100-02", "1", 12.0, 614.0, 81137.0, 64.309, 36.0, None),  # GPU_UTIL beats GR_ENGINE
    ]
    assert {s.uuid for s in samples[:4]} == {"GPU-d6dd33b9-e50e-997c-f303-c8f7312fa498"}


def test_mig_board_sample_is_made_from_instance_series_when_no_board_series_came() -> None:
    text = "\n".join(
        line
        for line in fixture("mig.txt").splitlines()
        if 'gpu="1"' not in line and ("GPU_I_ID" in line or line.startswith("#"))
    )
    text += (
        '\nDCGM_FI_DEV_POWER_USAGE{gpu="0",UUID="GPU-d6dd33b9-e50e-997c-f303-c8f7312fa498",'
        'device="nvidia0",modelName="NVIDIA A100-SXM4-80GB",GPU_I_PROFILE="1g.10gb",GPU_I_ID="9",'
        'Hostname="dgx-a100-02"} 187.512000\n'
    )
    samples = parse_metrics(text, at=T0)
    assert [(s.gpu, s.power_w, s.memory_used_mib, s.mig_profile) for s in samples] == [
        ("0", 187.512, None, None),
        ("0/1", None, 30203.0, "3g.40gb"),
        ("0/9", None, 0.0, "1g.10gb"),
        ("0/13", None, 5132.0, "1g.10gb"),
    ]
    assert samples[0].model == "NVIDIA A100-SXM4-80GB"


def test_kubernetes_mode_pod_labels_only_on_allocated_gpus() -> None:
    samples = parse_metrics(fixture("kubernetes.txt"), at=T0)
    assert [(s.gpu, s.namespace, s.pod, s.container, s.utilization_pct) for s in samples] == [
        ("0", "ml-alice", "train-resnet-6d4f9b7c8-x2x4q", "main", 94.0),
        ("1", "research", "jupyter-bob-0", "notebook", 3.0),
        ("2", None, None, None, 0.0),
    ]
    assert [s.memory_total_mib for s in samples] == [80614.0, 80614.0, 80614.0]


def test_no_host_label_falls_back_to_the_endpoint_host() -> None:
    text = fixture("classic-hostname.txt").replace(',Hostname="ub20-a100-k8s"', "")
    assert {s.host for s in parse_metrics(text, at=T0, fallback_host="10.0.0.7")} == {"10.0.0.7"}
    assert parse_metrics(text, at=T0) == []  # nowhere to place them


def test_missing_metrics_stay_unknown_never_zero() -> None:
    text = "\n".join(line for line in fixture("classic-hostname.txt").splitlines() if "FB_FREE" not in line)
    text = "\n".join(line for line in text.splitlines() if "POWER_USAGE" not in line)
    first = parse_metrics(text, at=T0)[0]
    assert (first.memory_used_mib, first.memory_total_mib, first.power_w) == (4845.0, None, None)


def test_text_that_is_not_exposition_is_a_clear_error() -> None:
    with pytest.raises(BackendUnavailable) as raised:
        parse_metrics("<html><body>Bad gateway</body></html>\n", at=T0)
    assert raised.value.message.startswith("the text is not Prometheus text exposition (")


# -- round trip: what our agent serves reads back the same ------------------------------------


def _agent_samples() -> list[GpuSample]:
    board = h100(
        0,
        utilization=0,
        memory_used=20 * GIB,
        power_mw=187_512,
        temperature=44,
        pids=(),
        mig_enabled=True,
        errors={"nvmlDeviceGetUtilizationRates": NOT_SUPPORTED},
        migs={
            0: FakeMig(1, "NVIDIA H100 80GB HBM3 MIG 3g.40gb", "MIG-aa", 15 * GIB, 40448 * MIB),
            2: FakeMig(9, "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "MIG-bb", 13 * MIB, 9856 * MIB),
        },
    )
    whole = h100(1, name='Odd "model" \\ name\nwith a newline', pids=())
    return NvmlSampler(FakeNvml([board, whole]), "gpu01.cluster.example", clock=lambda: T0).sample()


def test_exposition_reads_back_the_same_figures() -> None:
    sent = _agent_samples()
    read = parse_metrics(render(sent).decode(), at=T0)
    assert [figures(s) for s in read] == [figures(s) for s in sent]
    assert [(s.uuid, s.model) for s in read] == [(s.uuid, s.model) for s in sent]
    assert [figures(s) for s in read] == [
        ("gpu01.cluster.example", "0", None, 20480.0, 81559.0, 187.512, 44.0, None),
        ("gpu01.cluster.example", "0/1", None, 15360.0, 40448.0, None, None, "3g.40gb"),
        ("gpu01.cluster.example", "0/9", None, 13.0, 9856.0, None, None, "1g.10gb"),
        ("gpu01.cluster.example", "1", 37.0, 10240.0, 81559.0, 71.234, 41.0, None),
    ]


def test_exposition_uses_dcgm_exporter_names_and_escapes_label_values() -> None:
    held = GpuSample(
        at=T0,
        host="gpu-node-3",
        gpu="2",
        source="nvml",
        uuid="GPU-x",
        model="NVIDIA A100 80GB PCIe",
        utilization_pct=5.0,
        pod='evil"} 1\nDCGM_FI_DEV_GPU_UTIL{gpu="9',
        namespace="ml-alice",
        container="main",
    )
    text = render([held]).decode()
    assert text.splitlines()[:3] == [
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).",
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
        'DCGM_FI_DEV_GPU_UTIL{Hostname="gpu-node-3",UUID="GPU-x",container="main",device="nvidia2",gpu="2",'
        'modelName="NVIDIA A100 80GB PCIe",namespace="ml-alice",'
        'pod="evil\\"} 1\\nDCGM_FI_DEV_GPU_UTIL{gpu=\\"9"} 5.0',
    ]
    (read,) = parse_metrics(text, at=T0)
    assert (read.pod, read.namespace, read.container, read.gpu) == (held.pod, "ml-alice", "main", "2")
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


# -- scraping over HTTP ----------------------------------------------------------------------


def test_scrape_keeps_the_good_endpoints_and_names_each_failure() -> None:
    pages = {
        "/classic/metrics": Reply(body=fixture("classic-hostname.txt").encode()),
        "/k8s/metrics": Reply(body=fixture("kubernetes.txt").encode()),
        "/broken/metrics": Reply(500, b"dcgm error: DCGM initialization error\n"),
        "/gateway/metrics": Reply(200, b"<html><body>Bad gateway</body></html>\n", "text/html"),
        "/slow/metrics": Reply(body=fixture("mig.txt").encode(), delay_s=1.5),
    }

    def handler(request: Received) -> Reply:
        return pages.get(request.path, Reply(404, b"404 page not found\n"))

    with serving(handler) as (base, received):
        dead = dead_url()
        urls = [f"{base}{path}" for path in pages] + [dead, f"{base}/classic/metrics"]  # one repeated
        result = scrape(urls, timeout=0.5, clock=lambda: T0)
    assert [(s.host, s.gpu) for s in result.samples] == [
        ("ub20-a100-k8s", "0"),
        ("ub20-a100-k8s", "1"),
        ("gpu-node-3", "0"),
        ("gpu-node-3", "1"),
        ("gpu-node-3", "2"),
    ]
    assert {s.at for s in result.samples} == {T0}
    reasons = {failure.url.removeprefix(base): failure.reason for failure in result.failures}
    assert reasons[dead] == "refused the connection (is dcgm-exporter running and listening on that port?)"
    assert reasons["/broken/metrics"] == "answered HTTP 500 Internal Server Error"
    assert reasons["/gateway/metrics"].startswith("its answer is not Prometheus text exposition (")
    assert reasons["/slow/metrics"] == "did not answer within 0.5 s"
    assert len(result.failures) == 4
    assert sum(1 for r in received if r.path == "/classic/metrics") == 1  # each URL asked once
    assert received[0].headers.get("Accept") == "text/plain"


def test_scrape_refuses_urls_that_are_not_http() -> None:
    result = scrape(["file:///etc/passwd"], timeout=1)
    assert result.samples == ()
    assert result.failures == (
        EndpointFailure("file:///etc/passwd", "file:///etc/passwd is not an http:// or https:// URL"),
    )
    assert scrape([]).failures == ()
