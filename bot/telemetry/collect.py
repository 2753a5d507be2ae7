"""One collection pass: read the GPU sources, attribute each GPU to its job, roll the samples up.

The pass runs on the scheduler's leader (`ScheduledWork.sample`) every `sample_interval_s`, and
inside `concierge agent --store` on a GPU node. A source that cannot be read is reported and the
others still count; a cluster that cannot say who holds which GPU leaves the samples unattributed
(they are still stored, and the digest lists them as such) rather than dropping them.

dcgm-exporter endpoints are the static list in the settings plus, where a Service is named
(`gpu.dcgm.service`) and a Kubernetes cluster configured, that Service's ready pods, looked up
again on every pass (dcgm-exporter is a DaemonSet: GPU nodes come and go). The lookup is passed
in as a plain callable (`bot.assembly` builds it), so the collector knows no Kubernetes; a failed
lookup is one more reported problem, and the static endpoints are scraped all the same. Who holds a
GPU allocated to a pod is passed in the same way (`pod_holders`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from backends.errors import ConciergeError
from backends.gpu.attribution import attribute
from backends.gpu.dcgm import scrape
from backends.gpu.prometheus import PrometheusGpuQuery
from backends.gpu.samples import GpuHolder, GpuSample
from backends.gpu.settings import GpuTelemetrySettings
from bot.store.telemetry import RollupCounts, TelemetryStore

log = logging.getLogger("concierge.telemetry")

# (node, GPU index) → the Slurm job holding it; one `scontrol show job -d` behind it.
SlurmAllocations = Callable[[], Mapping[tuple[str, str], GpuHolder]]
# The current dcgm-exporter /metrics URLs of a discovered source (a Kubernetes Service's pods).
EndpointDiscovery = Callable[[], list[str]]
# Who holds each GPU a batch names by (namespace, pod): Kubernetes' rule, given by the assembly.
PodHolders = Callable[[Sequence[GpuSample]], Mapping[tuple[str, str], GpuHolder]]


@dataclass(frozen=True)
class CollectionReport:
    samples: int
    attributed: int
    counts: RollupCounts
    problems: tuple[str, ...]  # sources that could not be read, in words


class GpuCollector:
    def __init__(
        self,
        settings: GpuTelemetrySettings,
        telemetry: TelemetryStore,
        slurm_allocations: SlurmAllocations | None = None,
        discover_endpoints: EndpointDiscovery | None = None,
        interval_s: float = 30.0,
        pod_holders: PodHolders | None = None,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._slurm_allocations = slurm_allocations
        self._discover_endpoints = discover_endpoints
        self._pod_holders = pod_holders
        # A pass reads Prometheus's averages over the time since the last pass: each stands for it.
        self._interval_s = interval_s
        prometheus = settings.prometheus
        self._prometheus = (
            PrometheusGpuQuery(prometheus.url, timeout_s=prometheus.timeout_s, selector=prometheus.selector)
            if prometheus.url
            else None
        )
        self._logged_problems: frozenset[str] = frozenset()

    def collect_once(self, extra: Sequence[GpuSample] = ()) -> CollectionReport:
        """Scrape the configured and discovered dcgm-exporter endpoints (plus `extra` samples, e.g.
        the agent's own NVML readings) and store them attributed."""
        problems: list[str] = []
        samples = list(extra)
        urls = [*self._settings.dcgm.endpoints, *self._discovered(problems)]
        if urls:
            scraped = scrape(
                urls, self._settings.dcgm.timeout_s, max_parallel=self._settings.dcgm.max_parallel
            )
            samples.extend(scraped.samples)
            problems.extend(failure.describe() for failure in scraped.failures)
        batches: list[tuple[Sequence[GpuSample], float | None]] = [(samples, None)]
        if self._prometheus is not None:
            try:
                averaged = self._prometheus.samples(timedelta(seconds=self._interval_s))
                batches.append((averaged, self._interval_s))
            except ConciergeError as e:
                problems.append(e.message)
        return self._record(batches, problems)

    def _discovered(self, problems: list[str]) -> list[str]:
        service = self._settings.dcgm.service
        if self._discover_endpoints is None:
            if service:
                problems.append(
                    f"gpu.dcgm.service names {service}, but no Kubernetes cluster is configured to look "
                    "it up in; set the k8s settings (e.g. CONCIERGE_K8S__KUBECONFIG) to scrape its pods"
                )
            return []
        try:
            found = self._discover_endpoints()
        except ConciergeError as e:
            static = "; the configured endpoints were still scraped" if self._settings.dcgm.endpoints else ""
            problems.append(f"{e.message}{static}")
            return []
        if not found:
            where = f"Service {service}" if service else "the dcgm-exporter Service"
            problems.append(
                f"no ready dcgm-exporter pod was found behind {where}, so none was scraped; is "
                "dcgm-exporter running on the GPU nodes?"
            )
        return found

    def store(
        self,
        samples: Sequence[GpuSample],
        problems: list[str] | None = None,
        interval_seconds: float | None = None,
    ) -> CollectionReport:
        """Store one batch of samples attributed (the agent's sink)."""
        return self._record([(samples, interval_seconds)], list(problems or ()))

    def _record(
        self, batches: Sequence[tuple[Sequence[GpuSample], float | None]], problems: list[str]
    ) -> CollectionReport:
        """Attribute and roll up each batch (its samples stand for its seconds, None: the default),
        asking Slurm who holds what once per pass, and log the pass's problems once."""
        allocations = self._allocations(problems) if any(batch for batch, _ in batches) else {}
        read = attributed = 0
        counts = RollupCounts(0, 0, 0)
        for batch, seconds in batches:
            held = attribute(batch, allocations, self._pod_holders(batch) if self._pod_holders else {})
            added = self._telemetry.record(held, seconds)
            counts = RollupCounts(
                counts.samples + added.samples,
                counts.minute_rows + added.minute_rows,
                counts.hour_rows + added.hour_rows,
            )
            read += len(batch)
            attributed += sum(1 for _, holder in held if holder is not None)
        self._log_changes(problems)
        return CollectionReport(read, attributed, counts, tuple(problems))

    def _log_changes(self, problems: Sequence[str]) -> None:
        """Log a problem when it starts and when it ends, not at every pass: an agent on a node
        without Slurm would otherwise say so twice a minute for ever."""
        now = frozenset(problems)
        for problem in sorted(now - self._logged_problems):
            log.warning("GPU collection: %s", problem)
        for problem in sorted(self._logged_problems - now):
            log.info("GPU collection: no longer: %s", problem)
        self._logged_problems = now

    def _allocations(self, problems: list[str]) -> Mapping[tuple[str, str], GpuHolder]:
        if self._slurm_allocations is None:
            return {}
        try:
            return self._slurm_allocations()
        except ConciergeError as e:
            problems.append(f"cannot tell which Slurm job holds which GPU ({e}); samples kept unattributed")
            return {}
