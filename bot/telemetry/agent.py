"""`concierge agent`: samples this node's GPUs through NVML every interval, and either rolls the
samples up into the store (`--store`, attributed to Slurm jobs) or serves them on /metrics in
dcgm-exporter's metric names (`--serve`), so the digest reads agent nodes and dcgm-exporter nodes
through one path.

The sampler is created once and kept: nvmlInit per sample would cost milliseconds and, on a node
whose driver is not loaded yet, the sampler itself retries the init on its own schedule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from backends.errors import ConciergeError
from backends.gpu.exposition import serve_metrics
from backends.gpu.nvml import NvmlSampler, load_pynvml
from backends.gpu.samples import GpuSample
from bot.metrics import Metrics

if TYPE_CHECKING:
    from bot.settings import MetricsSettings
    from bot.store import Store

# The CLI door's view of the node's GPUs (it imports no backend internals: pyproject.toml's contracts).
__all__ = ["GpuSample", "LatestSamples", "NvmlSampler", "SamplingLoop", "Sink", "node_sampler"]
log = logging.getLogger("concierge.agent")

Sink = Callable[[Sequence[GpuSample]], object]  # what a sink returns is ignored


def node_sampler(host: str, init_retry_s: float) -> NvmlSampler:
    """This node's GPUs through the real NVML binding (pynvml stays in backends.gpu)."""
    return NvmlSampler(load_pynvml(), host, init_retry_s=init_retry_s)


class LatestSamples:
    """What /metrics serves: the last sampling pass, replaced whole (readers never see half a pass)."""

    def __init__(self) -> None:
        self._samples: tuple[GpuSample, ...] = ()
        self._lock = threading.Lock()

    def replace(self, samples: Sequence[GpuSample]) -> None:
        with self._lock:
            self._samples = tuple(samples)

    def read(self) -> tuple[GpuSample, ...]:
        with self._lock:
            return self._samples

    def serve(self, host: str, port: int) -> WSGIServer:
        """/metrics in dcgm-exporter's names on a background thread; shut the server down to stop."""
        return serve_metrics(self.read, host, port)


def agent_probes(settings: MetricsSettings, metrics: Metrics, store: Store | None) -> WSGIServer | None:
    """The agent's own /metrics (its passes), /healthz and /readyz (the store answers, when it
    writes to one) on `settings`' port, beside the GPUs' /metrics of `--serve`; None when off."""
    if not settings.enabled:
        return None
    from bot.metrics_http import serve_health_if_free

    def ready() -> str | None:
        return None if store is None else store.unready()

    return serve_health_if_free(metrics.registry, settings.host, settings.port, ready)


class SamplingLoop:
    def __init__(
        self, sampler: NvmlSampler, interval_s: float, sinks: Sequence[Sink], metrics: Metrics | None = None
    ) -> None:
        self._sampler = sampler
        self._interval_s = interval_s
        self._sinks = tuple(sinks)
        self._metrics = metrics  # passes counted by outcome (concierge_agent_sampling_passes_total)

    def run(self, stop: threading.Event, passes: int | None = None) -> int:
        """Sample until `stop` is set (or `passes` passes are done); returns the passes made.
        A failing pass is logged and the loop goes on: a node agent must not die of one bad read."""
        done = 0
        while not stop.is_set() and (passes is None or done < passes):
            try:
                samples = self._sampler.sample()
                for sink in self._sinks:
                    sink(samples)
                self._count("ok")
            except ConciergeError as e:
                log.warning("GPU sampling pass failed: %s", e)
                self._count("failed")
            done += 1
            if passes is None or done < passes:
                stop.wait(self._interval_s)
        return done

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.agent_passes.labels(outcome).inc()
