"""GPU use over a window, from a Prometheus server that scrapes dcgm-exporter (or our agents).

Why a query and not a scrape: a digest wants "how busy was this GPU over the last hour", which
Prometheus already knows; one instant query per metric (`avg_over_time(METRIC[window])`) answers
for every GPU of the cluster at once, whatever the number of nodes.

- Six queries: GPU_UTIL, FB_USED, FB_FREE, POWER_USAGE, GPU_TEMP and PROF_GR_ENGINE_ACTIVE (the
  MIG stand-in for utilisation, see dcgm.py), each averaged over the window. `avg_over_time`
  drops the metric name, so each answer is read knowing which query it answers.
- Results are grouped by the same rules as a scrape (dcgm.SeriesGroups). With no Hostname label
  (a relabelled Prometheus), the `node` label or the host of `instance` places the series.
- Errors say what Prometheus said: an HTTP error or `"status": "error"` becomes
  BackendUnavailable carrying the server's `errorType` and `error`.
- The window and the extra label matchers are checked before they are put into PromQL, so a
  setting cannot turn into a different query.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from backends.errors import BackendUnavailable, ConfigurationError
from backends.gpu.dcgm import SeriesGroups, fetch_text, why_unreachable
from backends.gpu.exposition import FB_FREE, FB_USED, GPU_TEMP, GPU_UTIL, GR_ENGINE_ACTIVE, POWER_USAGE
from backends.gpu.nvml import utc_now
from backends.gpu.samples import GpuSample

QUERIED_METRICS = (GPU_UTIL, FB_USED, FB_FREE, POWER_USAGE, GPU_TEMP, GR_ENGINE_ACTIVE)
RETRY_AFTER_S = 60.0
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
# label="value" | label=~"regex" | label!="v" | label!~"r", comma separated; no braces, no newlines.
_MATCHER = r'[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*(?:=|!=|=~|!~)[ \t]*"(?:[^"\\\n]|\\[^\n])*"[ \t]*'
_SELECTOR = re.compile(rf"(?:{_MATCHER}(?:,{_MATCHER})*,?)?")


def prometheus_duration(window: timedelta | str) -> str:
    """A PromQL range duration: `timedelta(hours=1)` → "3600s"; "1h30m" is kept as it is."""
    if isinstance(window, timedelta):
        seconds = int(window.total_seconds())
        if seconds <= 0:
            raise ConfigurationError(f"the averaging window must be positive, not {window}")
        return f"{seconds}s"
    text = window.strip()
    if not _DURATION.fullmatch(text):
        raise ConfigurationError(f"{window!r} is not a Prometheus duration; write it like 30m, 1h or 1h30m")
    return text


def _fallback_host(labels: Mapping[str, str]) -> str | None:
    if labels.get("node"):
        return labels["node"]
    instance = labels.get("instance")
    if instance:
        return urllib.parse.urlsplit(f"//{instance}").hostname or instance
    return None


class PrometheusGpuQuery:
    """Averages of dcgm-exporter's GPU metrics over a window, for every GPU Prometheus knows."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        selector: str = "",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigurationError(f"the Prometheus URL {base_url!r} must start with http:// or https://")
        if not _SELECTOR.fullmatch(selector):
            raise ConfigurationError(
                f"the Prometheus label selector {selector!r} is not a list of matchers like "
                'cluster="a",namespace=~"gpu-.*"'
            )
        self._base = base_url.rstrip("/")
        self._timeout = timeout_s
        self._selector = selector.strip().rstrip(",")
        self._clock = clock

    def query_for(self, metric: str, duration: str) -> str:
        return f"avg_over_time({metric}{{{self._selector}}}[{duration}])"

    def samples(self, window: timedelta | str, *, at: datetime | None = None) -> list[GpuSample]:
        """One sample per GPU (and MIG instance) averaged over `window` ending at `at` (now)."""
        duration = prometheus_duration(window)
        when = _utc(at) if at is not None else self._clock()
        groups = SeriesGroups("prometheus")
        for metric in QUERIED_METRICS:
            for labels, value in self._vector(self.query_for(metric, duration), when):
                groups.add(metric, labels, value, _fallback_host(labels))
        return groups.samples(when)

    def _vector(self, query: str, at: datetime) -> list[tuple[dict[str, str], float]]:
        """An instant query's vector result as (labels, value) pairs."""
        body = self._get("/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"})
        data = body.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "vector":
            raise BackendUnavailable(
                f"Prometheus at {self._base} answered {query!r} without a vector result; "
                "is this URL a Prometheus server (or a compatible one such as Thanos or Mimir)?"
            )
        pairs: list[tuple[dict[str, str], float]] = []
        for item in data.get("result") or []:
            try:
                labels = {str(k): str(v) for k, v in item["metric"].items()}
                value = float(item["value"][1])  # [unix time, "text"]; "NaN" is a float
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                continue
            pairs.append((labels, value))
        return pairs

    def _get(self, path: str, parameters: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self._base}{path}?{urllib.parse.urlencode(parameters)}"
        try:
            raw = fetch_text(url, self._timeout, accept="application/json")
        except urllib.error.HTTPError as e:
            raise BackendUnavailable(
                f"Prometheus at {self._base} answered HTTP {e.code}: {_server_message(e.read())}",
                retry_after=RETRY_AFTER_S if e.code >= 500 else None,
            ) from e
        except OSError as e:
            raise BackendUnavailable(
                f"Prometheus at {self._base} {why_unreachable(e, self._timeout, 'Prometheus')}; "
                "GPU use over time cannot be shown until it answers",
                retry_after=RETRY_AFTER_S,
            ) from e
        except ValueError as e:  # over the size limit
            raise BackendUnavailable(f"Prometheus at {self._base} could not be read: {e}") from e
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise BackendUnavailable(f"Prometheus at {self._base} did not answer in JSON: {e}") from e
        if not isinstance(body, dict):
            raise BackendUnavailable(f"Prometheus at {self._base} answered something that is not its API")
        if body.get("status") != "success":
            raise BackendUnavailable(f"Prometheus at {self._base} refused the query: {_error_text(body)}")
        return body


def _error_text(body: Mapping[str, Any]) -> str:
    kind = body.get("errorType")
    error = body.get("error") or "no reason given"
    return f"{kind}: {error}" if kind else str(error)


def _server_message(raw: bytes) -> str:
    """Prometheus' error JSON (`errorType`, `error`), or the start of whatever else came back."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:300].decode("utf-8", errors="replace").strip() or "no reason given"
    if isinstance(body, dict):
        return _error_text(body)
    return str(body)[:300]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
