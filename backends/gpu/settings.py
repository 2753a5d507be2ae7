"""Settings of the GPU telemetry sources.

They live with the sources, like SlurmSettings with the Slurm backend; the bot's typed `Settings`
nests them (`CONCIERGE_GPU__…`) and passes them in. Every source is optional: a site may run
only the agent (NVML), only dcgm-exporter, only Prometheus, or several.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

# namespace (a DNS-1123 label) / Service name (a DNS-1035 label); port names are DNS-1123 labels.
_SERVICE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_PORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class NvmlSettings(BaseModel):
    enabled: bool = True  # the agent samples this host's GPUs through NVML
    interval_s: float = Field(default=30.0, gt=0)  # jobstats' and dcgm-exporter's cadence
    init_retry_s: float = Field(default=60.0, ge=0)  # after a failed nvmlInit (driver not loaded yet)


class DcgmSettings(BaseModel):
    # dcgm-exporter (or agent) endpoints, e.g. "http://gpu01:9400/metrics", always scraped.
    endpoints: list[str] = Field(default_factory=list)
    # A dcgm-exporter Service as "namespace/name" (e.g. "gpu-operator/nvidia-dcgm-exporter"): its
    # ready pods are scraped too, found through its EndpointSlices when Kubernetes is configured.
    service: str | None = None
    # The pods' port: a port name of the Service, or a number; None: "metrics", else 9400.
    service_port: str | int | None = None
    timeout_s: float = Field(default=5.0, gt=0)
    max_parallel: int = Field(default=8, ge=1)

    @field_validator("service")
    @classmethod
    def _namespace_and_name(cls, service: str | None) -> str | None:
        service = (service or "").strip()
        if not service:
            return None  # an empty environment variable: no Service
        if not _SERVICE.fullmatch(service):
            raise ValueError(
                f"{service!r} does not name a Kubernetes Service: write it as namespace/name, e.g. "
                "gpu-operator/nvidia-dcgm-exporter"
            )
        return service

    @field_validator("service_port")
    @classmethod
    def _port_name_or_number(cls, port: str | int | None) -> str | int | None:
        """A number given as text (environment variables are text) is a number; a name is a DNS
        label, as Service port names are."""
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port)
        if isinstance(port, int) and not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not between 1 and 65535")
        if isinstance(port, str) and not _PORT_NAME.fullmatch(port):
            raise ValueError(
                f"{port!r} is neither a port number nor a port name (lowercase letters, digits and "
                "'-', e.g. metrics)"
            )
        return port


class PrometheusSettings(BaseModel):
    url: str | None = None  # "http://prometheus:9090"; None: not used
    window: str = "1h"  # the averaging window of a digest, as a PromQL duration
    selector: str = ""  # extra label matchers, e.g. 'cluster="lab"'
    timeout_s: float = Field(default=10.0, gt=0)


class GpuTelemetrySettings(BaseModel):
    nvml: NvmlSettings = Field(default_factory=NvmlSettings)
    dcgm: DcgmSettings = Field(default_factory=DcgmSettings)
    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)

    @property
    def has_cluster_sources(self) -> bool:
        """Whether the bot itself reads GPUs (dcgm-exporter endpoints, a Service, Prometheus);
        without any, samples come only from node agents writing to the store."""
        return bool(self.dcgm.endpoints or self.dcgm.service or self.prometheus.url)
