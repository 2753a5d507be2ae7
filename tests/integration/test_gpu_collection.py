"""The collection pass and the node agent: sources → attribution → roll-ups in the store.

dcgm-exporter endpoints are local HTTP servers serving the real text format; the agent samples a
fake NVML module (passed in) and its /metrics is read back over HTTP by the same parser the
digest uses. Slurm attribution runs against the real local Slurm where it is up.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from backends.gpu.dcgm import parse_metrics
from backends.gpu.exposition import serve_metrics
from backends.gpu.nvml import NvmlSampler
from backends.gpu.samples import GpuHolder, GpuSample
from backends.gpu.settings import DcgmSettings, GpuTelemetrySettings
from backends.k8s.gpu_holders import gpu_holders
from backends.slurm.gpu_allocation import read_gpu_allocations
from backends.slurm.runner import SlurmCli
from backends.slurm.settings import SlurmSettings
from bot.store import Store
from bot.store.telemetry import TelemetryStore
from bot.telemetry.agent import LatestSamples, SamplingLoop
from bot.telemetry.collect import GpuCollector
from tests.gpu_fakes.dcgm_fixtures import fixture
from tests.gpu_fakes.http_server import Reply, dead_url, serving
from tests.gpu_fakes.nvml import FakeGpu, FakeNvml

GIB = 1024**3


def recent_usage(telemetry: TelemetryStore) -> dict[str, tuple[GpuHolder | None, float | None]]:
    now = datetime.now(UTC)
    _, usage = telemetry.usage(now - timedelta(hours=1), now + timedelta(minutes=2))
    return {row.name: (row.holder, row.mean_utilization_pct) for row in usage}


def test_a_pass_stores_every_readable_endpoint_attributed_and_names_the_dead_one(store: Store) -> None:
    telemetry = TelemetryStore(store.engine)
    holder = GpuHolder(backend="slurm", job_id="4242", owner="alice")
    with serving(lambda _: Reply(body=fixture("classic-hostname.txt").encode())) as (url, received):
        dead = dead_url()
        settings = GpuTelemetrySettings(dcgm=DcgmSettings(endpoints=[f"{url}/metrics", dead], timeout_s=2))
        collector = GpuCollector(
            settings, telemetry, slurm_allocations=lambda: {("ub20-a100-k8s", "0"): holder}
        )
        report = collector.collect_once()

    assert [r.path for r in received] == ["/metrics"]
    assert (report.samples, report.attributed) == (2, 1)
    assert len(report.problems) == 1 and dead in report.problems[0]
    stored = recent_usage(telemetry)
    assert set(stored) == {"ub20-a100-k8s:0", "ub20-a100-k8s:1"}
    assert stored["ub20-a100-k8s:0"][0] == holder
    assert stored["ub20-a100-k8s:1"][0] is None  # kept, as unattributed


def test_when_slurm_cannot_say_who_holds_what_the_samples_are_kept_unattributed(store: Store) -> None:
    from backends.errors import BackendUnavailable

    def unreachable() -> dict[tuple[str, str], GpuHolder]:
        raise BackendUnavailable("slurmctld is not answering")

    telemetry = TelemetryStore(store.engine)
    collector = GpuCollector(GpuTelemetrySettings(), telemetry, slurm_allocations=unreachable)
    sample = GpuSample(at=datetime.now(UTC), host="n1", gpu="0", source="nvml", utilization_pct=40.0)
    report = collector.store([sample])
    assert report.attributed == 0 and "slurmctld is not answering" in report.problems[0]
    assert recent_usage(telemetry) == {"n1:0": (None, 40.0)}


def test_a_lasting_problem_is_logged_when_it_starts_and_ends_not_every_pass(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from backends.errors import BackendUnavailable

    answers: list[BaseException | None] = [BackendUnavailable("scontrol was not found")] * 3 + [None]

    def allocations() -> dict[tuple[str, str], GpuHolder]:
        failure = answers.pop(0)
        if failure is not None:
            raise failure
        return {}

    collector = GpuCollector(GpuTelemetrySettings(), TelemetryStore(store.engine), allocations)
    sample = GpuSample(at=datetime.now(UTC), host="n1", gpu="0", source="nvml", utilization_pct=40.0)
    with caplog.at_level(logging.INFO, logger="concierge.telemetry"):
        reports = [collector.store([sample]) for _ in range(4)]
    assert [len(report.problems) for report in reports] == [1, 1, 1, 0]  # each pass still says it
    logged = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(logged) == 2
    assert logged[0][0] == "WARNING" and "scontrol was not found" in logged[0][1]
    assert logged[1][0] == "INFO" and logged[1][1].startswith("GPU collection: no longer: ")


def test_the_agent_samples_into_the_store_and_serves_the_same_figures_on_metrics(store: Store) -> None:
    nvml = FakeNvml(
        [
            FakeGpu(
                "NVIDIA H100 80GB HBM3", "GPU-aaa", utilization=12, memory_used=10 * GIB, power_mw=150_000
            ),
            FakeGpu(
                "NVIDIA H100 80GB HBM3", "GPU-bbb", utilization=80, memory_used=60 * GIB, power_mw=650_000
            ),
        ]
    )
    sampler = NvmlSampler(nvml, "gpu-node-1")
    telemetry = TelemetryStore(store.engine)
    collector = GpuCollector(GpuTelemetrySettings(), telemetry)
    latest = LatestSamples()
    loop = SamplingLoop(sampler, interval_s=0.01, sinks=[latest.replace, collector.store])
    assert loop.run(threading.Event(), passes=3) == 3
    sampler.close()

    assert recent_usage(telemetry) == {"gpu-node-1:0": (None, 12.0), "gpu-node-1:1": (None, 80.0)}
    server = serve_metrics(latest.read, "127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
    served = {
        s.gpu: (s.utilization_pct, s.memory_used_mib, s.power_w)
        for s in parse_metrics(text, at=datetime.now(UTC))
    }
    assert served == {"0": (12.0, 10240.0, 150.0), "1": (80.0, 61440.0, 650.0)}


def test_a_failing_pass_does_not_stop_the_agent() -> None:
    nvml = FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3", "GPU-aaa")], init_error=9)  # driver not loaded
    seen: list[int] = []
    loop = SamplingLoop(
        NvmlSampler(nvml, "n1", init_retry_s=0), interval_s=0.01, sinks=[lambda s: seen.append(len(s))]
    )
    assert loop.run(threading.Event(), passes=2) == 2
    assert seen == []  # nothing sampled, nothing crashed


@pytest.mark.slurm
def test_slurm_attribution_names_the_job_that_holds_the_gpu(slurm: None) -> None:
    job = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--uid=alice",
            "--output=/dev/null",
            "--chdir=/tmp",
            "--gres=gpu:l40s:1",
            "--wrap",
            "sleep 60",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        deadline = time.monotonic() + 20
        holders: dict[tuple[str, str], GpuHolder] = {}
        while time.monotonic() < deadline:
            holders = dict(read_gpu_allocations(SlurmCli(SlurmSettings())))
            if any(h.job_id == job for h in holders.values()):
                break
            time.sleep(0.5)
        held = {slot: h for slot, h in holders.items() if h.job_id == job}
        assert len(held) == 1, holders
        [(slot, holder)] = held.items()
        assert holder == GpuHolder(backend="slurm", job_id=job, owner="alice")
        # The fake node has a100 at indices 0-1 and l40s at 2-3 (gres.conf order).
        assert slot[1] in {"2", "3"}, slot
    finally:
        subprocess.run(["scancel", job], check=False)


def test_a_pass_reads_prometheus_averages_over_the_interval_and_counts_them_for_it(store: Store) -> None:
    from backends.gpu.settings import PrometheusSettings
    from tests.gpu_fakes.prometheus_api import FakePrometheus

    labels = {"Hostname": "p1", "gpu": "0", "modelName": "NVIDIA A100-SXM4-40GB", "UUID": "GPU-p10"}
    telemetry = TelemetryStore(store.engine)
    with serving(FakePrometheus({"DCGM_FI_DEV_GPU_UTIL": [(labels, "37.5")]})) as (url, received):
        settings = GpuTelemetrySettings(prometheus=PrometheusSettings(url=url))
        report = GpuCollector(settings, telemetry, interval_s=60).collect_once()
    assert received[0].query["query"] == ["avg_over_time(DCGM_FI_DEV_GPU_UTIL{}[60s])"]
    assert (report.samples, report.problems) == (1, ())
    now = datetime.now(UTC)
    _, [row] = telemetry.usage(now - timedelta(hours=1), now + timedelta(minutes=2))
    assert (row.name, row.mean_utilization_pct, row.seconds) == ("p1:0", 37.5, 60.0)


def test_an_unreachable_prometheus_is_named_and_the_exporters_still_count(store: Store) -> None:
    from backends.gpu.settings import PrometheusSettings

    telemetry = TelemetryStore(store.engine)
    with serving(lambda _: Reply(body=fixture("classic-hostname.txt").encode())) as (url, _):
        settings = GpuTelemetrySettings(
            dcgm=DcgmSettings(endpoints=[f"{url}/metrics"]),
            prometheus=PrometheusSettings(url=dead_url("").rstrip("/"), timeout_s=2),
        )
        report = GpuCollector(settings, telemetry).collect_once()
    assert report.samples == 2 and len(report.problems) == 1 and "Prometheus" in report.problems[0]


def test_a_pass_with_exporters_and_prometheus_asks_slurm_once_and_logs_a_lasting_problem_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    from backends.errors import BackendUnavailable
    from backends.gpu.settings import PrometheusSettings
    from tests.gpu_fakes.prometheus_api import FakePrometheus

    asked: list[int] = []

    def no_scontrol() -> dict[tuple[str, str], GpuHolder]:
        asked.append(1)
        raise BackendUnavailable("scontrol was not found")

    labels = {"Hostname": "p1", "gpu": "0", "modelName": "NVIDIA A100-SXM4-40GB", "UUID": "GPU-p10"}
    exporter = Reply(body=fixture("classic-hostname.txt").encode())
    with (
        serving(lambda _: exporter) as (exporter_url, _),
        serving(FakePrometheus({"DCGM_FI_DEV_GPU_UTIL": [(labels, "37.5")]})) as (prometheus_url, _),
    ):
        settings = GpuTelemetrySettings(
            dcgm=DcgmSettings(endpoints=[f"{exporter_url}/metrics"]),
            prometheus=PrometheusSettings(url=prometheus_url),
        )
        collector = GpuCollector(
            settings, TelemetryStore(store.engine), no_scontrol, interval_s=60, pod_holders=gpu_holders
        )
        with caplog.at_level(logging.INFO, logger="concierge.telemetry"):
            reports = [collector.collect_once() for _ in range(3)]
    assert len(asked) == 3  # once per pass, not once per source
    assert [(r.samples, len(r.problems)) for r in reports] == [(3, 1)] * 3
    assert [(r.levelname, "scontrol was not found" in r.getMessage()) for r in caplog.records] == [
        ("WARNING", True)
    ]
