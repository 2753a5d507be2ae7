"""deploy/grafana-dashboard.json is JSON Grafana can import, and every query names only metrics
the bot exports (bot/metrics.py's registry, the routing's counters included) or the dcgm-exporter
metrics the digests read (backends/gpu/exposition.py): a renamed metric fails here, not as an
empty panel on a site's wall."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backends.gpu import exposition
from bot.llm.routing import RoutingCounts
from bot.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan", "vector",
}  # fmt: skip
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


class _Routing:
    counts = RoutingCounts()


def exported() -> set[str]:
    metrics = Metrics()
    metrics.follow_routing(_Routing())
    names = {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }
    dcgm = {
        value
        for name, value in vars(exposition).items()
        if isinstance(value, str) and value.startswith("DCGM_FI_")
    }
    return names | dcgm


def expressions(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        yield from expressions(panel.get("panels", []))
        for target in panel.get("targets", []):
            yield target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions (followed by a
    parenthesis), keywords, label names in `by (…)`, matchers `{…}`, ranges `[…]` or strings."""
    stripped = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)', " ", expr)
    tokens = re.findall(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*+(?!\s*\()", stripped)
    return {
        token for token in tokens if token.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d.*", token)
    }


def test_the_dashboard_is_importable_json_with_a_prometheus_input() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "gpu-concierge" and dashboard["panels"]
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_query_names_a_metric_the_bot_or_dcgm_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    known = exported()
    queried = [(expr, metric_names(expr)) for expr in expressions(dashboard["panels"])]
    assert all(names for _, names in queried), [expr for expr, names in queried if not names]
    unknown = {expr: sorted(names - known) for expr, names in queried if names - known}
    assert unknown == {}
    used = set().union(*(names for _, names in queried))
    assert {"concierge_requests_total", "concierge_slack_ack_seconds_bucket", "DCGM_FI_DEV_GPU_UTIL"} <= used


def test_the_name_check_finds_a_misspelt_metric() -> None:
    assert metric_names('sum by (le) (rate(concierge_ack_seconds_bucket{door="slack"}[5m]))') == {
        "concierge_ack_seconds_bucket"
    }
    assert "concierge_ack_seconds_bucket" not in exported()
