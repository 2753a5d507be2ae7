"""GPU telemetry sources: each dcgm-exporter endpoint and Prometheus give a scrape that parses."""

from __future__ import annotations

from backends.errors import ConciergeError
from backends.gpu.dcgm import scrape
from backends.gpu.prometheus import PrometheusGpuQuery
from backends.gpu.settings import GpuTelemetrySettings
from bot.doctor.report import Check, failed, passed


def gpu_checks(settings: GpuTelemetrySettings) -> list[Check]:
    checks: list[Check] = []
    dcgm = settings.dcgm
    for url in dcgm.endpoints:
        result = scrape([url], dcgm.timeout_s)
        if result.failures:
            reason = result.failures[0].reason
            checks.append(
                failed(
                    "dcgm",
                    f"{url} parses",
                    reason,
                    "fix CONCIERGE_GPU__DCGM__ENDPOINTS or start dcgm-exporter there",
                    6,
                )
            )
        else:
            checks.append(passed("dcgm", f"{url} parses", f"{len(result.samples)} GPU(s)"))
    prometheus = settings.prometheus
    if prometheus.url:
        try:
            query = PrometheusGpuQuery(
                prometheus.url, timeout_s=prometheus.timeout_s, selector=prometheus.selector
            )
            samples = query.samples(prometheus.window)
        except ConciergeError as e:
            checks.append(
                failed(
                    "prometheus",
                    "a GPU query answers",
                    e.message,
                    "fix CONCIERGE_GPU__PROMETHEUS__URL",
                    e.exit_code,
                )
            )
        else:
            checks.append(
                passed(
                    "prometheus",
                    "a GPU query answers",
                    f"{len(samples)} GPU(s) in the last {prometheus.window}",
                )
            )
    return checks
