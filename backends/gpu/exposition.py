"""GpuSamples as Prometheus text, in dcgm-exporter's metric and label names.

Why dcgm-exporter's names: the agent's `/metrics` then reads exactly like a dcgm-exporter
endpoint, so one parser (dcgm.py) reads both, and a site's Prometheus, dashboards and alerts
written for dcgm-exporter work on nodes that only run our agent.

- Metrics: DCGM_FI_DEV_GPU_UTIL (%), DCGM_FI_DEV_FB_USED and DCGM_FI_DEV_FB_FREE (MiB),
  DCGM_FI_DEV_POWER_USAGE (W), DCGM_FI_DEV_GPU_TEMP (°C), with dcgm-exporter's help texts.
- Labels, as dcgm-exporter writes them: `gpu` (the index), `UUID`, `device` (`nvidia<index>`),
  `modelName`, `GPU_I_PROFILE` and `GPU_I_ID` on MIG devices, `Hostname`, and `pod`,
  `namespace`, `container` where a sample knows them.
- A value the source did not have is left out (dcgm-exporter omits blank values too); it is
  never written as 0.
- prometheus_client writes the text, so label values (model names, pod names) are escaped by
  the library, never by string concatenation here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, ThreadingWSGIServer, _SilentHandler
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from backends.gpu.samples import GpuSample

# What the agent's /metrics answers with: the classic text format, which every Prometheus reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
FB_USED = "DCGM_FI_DEV_FB_USED"
FB_FREE = "DCGM_FI_DEV_FB_FREE"
FB_TOTAL = "DCGM_FI_DEV_FB_TOTAL"
FB_RESERVED = "DCGM_FI_DEV_FB_RESERVED"
POWER_USAGE = "DCGM_FI_DEV_POWER_USAGE"
GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"
GR_ENGINE_ACTIVE = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"

HOSTNAME_LABELS = ("Hostname", "hostname")  # dcgm-exporter renamed it in 2026; both are read
MIG_PROFILE_LABEL = "GPU_I_PROFILE"
MIG_INSTANCE_LABEL = "GPU_I_ID"


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    help: str
    read: Callable[[GpuSample], float | None]


def _free_mib(sample: GpuSample) -> float | None:
    if sample.memory_total_mib is None or sample.memory_used_mib is None:
        return None
    return max(sample.memory_total_mib - sample.memory_used_mib, 0.0)


_FIELDS = (
    _Field(GPU_UTIL, "GPU utilization (in %).", lambda s: s.utilization_pct),
    _Field(FB_USED, "Framebuffer memory used (in MiB).", lambda s: s.memory_used_mib),
    _Field(FB_FREE, "Framebuffer memory free (in MiB).", _free_mib),
    _Field(POWER_USAGE, "Power draw (in W).", lambda s: s.power_w),
    _Field(GPU_TEMP, "GPU temperature (in C).", lambda s: s.temperature_c),
)


def split_gpu(gpu: str) -> tuple[str, str | None]:
    """ "0/7" → ("0", "7"); "0" → ("0", None)."""
    index, _, instance = gpu.partition("/")
    return index, instance or None


def dcgm_labels(sample: GpuSample) -> dict[str, str]:
    """The labels dcgm-exporter would put on this GPU's (or MIG device's) series."""
    index, instance = split_gpu(sample.gpu)
    labels = {
        "gpu": index,
        "UUID": sample.uuid or "",
        "device": f"nvidia{index}",
        "modelName": sample.model or "",
    }
    if instance is not None:
        labels[MIG_PROFILE_LABEL] = sample.mig_profile or ""
        labels[MIG_INSTANCE_LABEL] = instance
    labels["Hostname"] = sample.host
    holder = {"container": sample.container, "namespace": sample.namespace, "pod": sample.pod}
    labels.update({name: value for name, value in holder.items() if value})
    return labels


class GpuSampleCollector(Collector):
    """A prometheus_client collector over whatever `read` returns at scrape time.

    The agent registers one (`registry.register(GpuSampleCollector(latest_samples))`) and serves
    the registry; `render` uses one for a fixed list."""

    def __init__(self, read: Callable[[], Sequence[GpuSample]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        samples = list(self._read())
        for field in _FIELDS:
            metric = Metric(field.name, field.help, "gauge")
            for sample in samples:
                value = field.read(sample)
                if value is not None:
                    metric.add_sample(field.name, dcgm_labels(sample), value)
            if metric.samples:
                yield metric


def render(samples: Iterable[GpuSample]) -> bytes:
    """The Prometheus text exposition of these samples (serve it as `CONTENT_TYPE`)."""
    fixed = list(samples)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GpuSampleCollector(lambda: fixed))
    return generate_latest(registry)


def serve_metrics(read: Callable[[], Sequence[GpuSample]], host: str, port: int) -> WSGIServer:
    """/metrics on a background thread, as dcgm-exporter would serve it; returns the server (shut
    it down to stop)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GpuSampleCollector(read))
    server = make_server(
        host, port, make_wsgi_app(registry), ThreadingWSGIServer, handler_class=_SilentHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
