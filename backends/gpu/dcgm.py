"""dcgm-exporter's /metrics text → GpuSamples, and scraping many endpoints at once.

Why it is built this way:
- prometheus_client's own parser reads the text (`text_string_to_metric_families`), so quoting,
  escapes and HELP/TYPE lines are handled as Prometheus does; nothing here splits lines by hand.
- One sample per (host, gpu[, GPU_I_ID]): dcgm-exporter writes one series per metric per GPU
  (and per MIG GPU instance, labelled `GPU_I_ID`/`GPU_I_PROFILE`); `SeriesGroups` gathers them.
  prometheus.py feeds the same groups from its query results, so both read labels one way.
- Labels: `Hostname` and `hostname` (renamed on dcgm-exporter's master in 2026), `UUID` and the
  old namespace's `uuid`, `modelName`, and in Kubernetes mode `pod`/`namespace`/`container`
  (present only on GPUs allocated to a pod). With no host label the endpoint's host stands in.
- The person a pod belongs to, where the pod says so: dcgm-exporter copies the pod's own labels
  onto its series when run with `--kubernetes-enable-pod-labels` (names in Prometheus form, e.g.
  JupyterHub's `hub.jupyter.org/username` as `hub_jupyter_org_username`); the first of
  `OWNER_LABELS` present is the owner, ahead of the namespace a digest otherwise names.
  Where series of one GPU disagree on a label (a time-sliced GPU has one series per pod), the
  first non-empty value is kept: a GpuSample names one pod.
- MIG: power and temperature belong to the board; instance samples leave them out (as NVML does)
  and the board sample ("0") carries them, made from the instance series if no board series came
  (and only then: instance series without board facts make no board sample).
- Utilisation is DCGM_FI_DEV_GPU_UTIL; where it is absent (MIG instances, where DCGM cannot
  measure it) DCGM_FI_PROF_GR_ENGINE_ACTIVE × 100 stands in, the figure NVIDIA documents for MIG.
  Memory total is FB_TOTAL when exported, else used + free (+ reserved).
- `scrape` asks every endpoint in parallel (a small thread pool: one slow node must not hold up
  the rest) and reports each failure by URL and reason next to the other endpoints' samples.
- Discovering the endpoints (a Kubernetes Service's pods, Slurm's nodes) is not this module's
  job: it takes a list of URLs.
"""

from __future__ import annotations

import http.client
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from backends.errors import BackendUnavailable
from backends.gpu.exposition import (
    FB_FREE,
    FB_RESERVED,
    FB_TOTAL,
    FB_USED,
    GPU_TEMP,
    GPU_UTIL,
    GR_ENGINE_ACTIVE,
    HOSTNAME_LABELS,
    MIG_INSTANCE_LABEL,
    MIG_PROFILE_LABEL,
    POWER_USAGE,
)
from backends.gpu.nvml import utc_now
from backends.gpu.samples import GpuSample

MAX_RESPONSE_BYTES = 32 * 1024 * 1024  # a node with 8 GPUs and every field is well under 1 MiB
WANTED_METRICS = frozenset(
    {GPU_UTIL, FB_USED, FB_FREE, FB_TOTAL, FB_RESERVED, POWER_USAGE, GPU_TEMP, GR_ENGINE_ACTIVE}
)

# Physical facts of the whole board: on a MIG instance's series they repeat the board's figure,
# so instance samples leave them out (as NVML does) and the board sample carries them.
_BOARD_METRICS = frozenset({POWER_USAGE, GPU_TEMP})
_INSTANCE_LABELS = frozenset({MIG_INSTANCE_LABEL, MIG_PROFILE_LABEL})
# Pod labels that name a person, as dcgm-exporter exports them (most specific first).
OWNER_LABELS = ("hub_jupyter_org_username", "owner", "user", "username")

# (host, gpu index, GPU instance id or None)
GpuKey = tuple[str, str, str | None]


def _number_first(text: str | None) -> tuple[int, str]:
    return (int(text), "") if text is not None and text.isdigit() else (-1, text or "")


def _order(key: GpuKey) -> tuple[str, tuple[int, str], bool, tuple[int, str]]:
    """Host, then GPU index as a number, the board before its MIG instances."""
    host, index, instance = key
    return host, _number_first(index), instance is not None, _number_first(instance)


def host_of(labels: Mapping[str, str], fallback: str | None = None) -> str | None:
    for name in HOSTNAME_LABELS:
        if labels.get(name):
            return labels[name]
    return fallback


@dataclass
class _Group:
    labels: dict[str, str] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)


class SeriesGroups:
    """Series of many metrics gathered per GPU (or MIG instance), then made into samples."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._groups: dict[GpuKey, _Group] = {}

    def add(self, metric: str, labels: Mapping[str, str], value: float, fallback_host: str | None) -> None:
        gpu = labels.get("gpu")
        host = host_of(labels, fallback_host)
        if not gpu or not host:
            return  # not a GPU series (NVSwitch, the exporter's own metrics) or no way to place it
        key = (host, gpu, labels.get(MIG_INSTANCE_LABEL) or None)
        group = self._groups.setdefault(key, _Group())
        for name, label_value in labels.items():
            if label_value and name not in group.labels:
                group.labels[name] = label_value  # first non-empty value wins (module doc)
        if metric in WANTED_METRICS and not math.isnan(value):
            group.values[metric] = value

    def samples(self, at: datetime) -> list[GpuSample]:
        groups = dict(self._groups)
        for (host, index, instance), group in self._groups.items():
            board = (host, index, None)
            board_values = {k: v for k, v in group.values.items() if k in _BOARD_METRICS}
            if instance is None or board in self._groups or not board_values:
                continue
            # Only instance series for this GPU, but they carry board facts: a board sample holds them.
            made = groups.setdefault(board, _Group())
            for name, label_value in group.labels.items():
                if name not in _INSTANCE_LABELS:
                    made.labels.setdefault(name, label_value)
            for metric, value in board_values.items():
                made.values.setdefault(metric, value)
        return [self._sample(key, groups[key], at) for key in sorted(groups, key=_order)]

    def _sample(self, key: GpuKey, group: _Group, at: datetime) -> GpuSample:
        host, index, instance = key
        labels, values = group.labels, group.values
        if instance is not None:
            values = {k: v for k, v in values.items() if k not in _BOARD_METRICS}
        utilisation = values.get(GPU_UTIL)
        if utilisation is None and GR_ENGINE_ACTIVE in values:
            utilisation = values[GR_ENGINE_ACTIVE] * 100
        used = values.get(FB_USED)
        total = values.get(FB_TOTAL)
        if total is None and used is not None and FB_FREE in values:
            total = used + values[FB_FREE] + values.get(FB_RESERVED, 0.0)
        return GpuSample(
            at=at,
            host=host,
            gpu=index if instance is None else f"{index}/{instance}",
            source=self._source,
            uuid=labels.get("UUID") or labels.get("uuid"),
            model=labels.get("modelName"),
            utilization_pct=utilisation,
            memory_used_mib=used,
            memory_total_mib=total,
            power_w=values.get(POWER_USAGE),
            temperature_c=values.get(GPU_TEMP),
            mig_profile=labels.get(MIG_PROFILE_LABEL) if instance is not None else None,
            pod=labels.get("pod"),
            namespace=labels.get("namespace"),
            container=labels.get("container"),
            pod_owner=next((labels[name] for name in OWNER_LABELS if labels.get(name)), None),
        )


def parse_metrics(
    text: str, *, at: datetime, fallback_host: str | None = None, where: str = "the text"
) -> list[GpuSample]:
    """GpuSamples from dcgm-exporter's (or our agent's) Prometheus text exposition."""
    groups = SeriesGroups("dcgm")
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                groups.add(family.name, sample.labels, float(sample.value), fallback_host)
    except ValueError as e:
        raise BackendUnavailable(
            f"{where} is not Prometheus text exposition ({e}); is it a dcgm-exporter /metrics endpoint?"
        ) from e
    return groups.samples(at)


@dataclass(frozen=True, slots=True)
class EndpointFailure:
    url: str
    reason: str

    def describe(self) -> str:
        return f"{self.url}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    samples: tuple[GpuSample, ...]
    failures: tuple[EndpointFailure, ...]


def why_unreachable(error: BaseException, timeout: float, service: str = "dcgm-exporter") -> str:
    """A person's sentence for what went wrong fetching one endpoint of `service`."""
    if isinstance(error, urllib.error.HTTPError):
        return f"answered HTTP {error.code} {error.reason}".rstrip()
    reason: object = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"did not answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"refused the connection (is {service} running and listening on that port?)"
    if isinstance(reason, socket.gaierror):
        return f"its host name does not resolve ({reason.strerror or reason})"
    if isinstance(reason, OSError):
        return f"could not be reached ({reason.strerror or reason})"
    return f"could not be read ({reason})"


def fetch_text(url: str, timeout: float, *, accept: str = "text/plain") -> str:
    """GET one URL; its body as text. Only http(s); raises OSError/ValueError subclasses."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{url} is not an http:// or https:// URL")
    request = urllib.request.Request(url, headers={"Accept": accept})  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked above
        body: bytes = response.read(MAX_RESPONSE_BYTES + 1)
        charset = response.headers.get_content_charset() or "utf-8"
    if len(body) > MAX_RESPONSE_BYTES:
        raise ValueError(f"the answer is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
    return body.decode(charset, errors="replace")


def _scrape_one(url: str, timeout: float, clock: Callable[[], datetime]) -> list[GpuSample] | EndpointFailure:
    try:
        text = fetch_text(url, timeout)
    except ValueError as e:
        return EndpointFailure(url, str(e))
    except OSError as e:  # URLError and HTTPError are OSErrors
        return EndpointFailure(url, why_unreachable(e, timeout))
    except http.client.HTTPException as e:  # something that is not HTTP answered
        return EndpointFailure(url, f"did not answer in HTTP ({type(e).__name__}: {e})")
    try:
        return parse_metrics(text, at=clock(), fallback_host=urlsplit(url).hostname, where="its answer")
    except BackendUnavailable as e:
        return EndpointFailure(url, e.message)


def scrape(
    urls: Iterable[str],
    timeout: float = 5.0,
    *,
    clock: Callable[[], datetime] = utc_now,
    max_parallel: int = 8,
) -> ScrapeResult:
    """Every endpoint's samples, plus one failure (URL and reason) for each that could not be read."""
    wanted: Sequence[str] = list(dict.fromkeys(urls))
    if not wanted:
        return ScrapeResult(samples=(), failures=())
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(wanted)))) as pool:
        results = list(pool.map(lambda url: _scrape_one(url, timeout, clock), wanted))
    samples: list[GpuSample] = []
    failures: list[EndpointFailure] = []
    for result in results:
        if isinstance(result, EndpointFailure):
            failures.append(result)
        else:
            samples.extend(result)
    return ScrapeResult(samples=tuple(samples), failures=tuple(failures))
