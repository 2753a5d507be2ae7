"""The bot's own metrics (Prometheus), one dedicated registry per process.

Each thing is counted in one place, never per door:
- requests by intent and outcome, and the answer latency: the engine, where every request is
  recorded and every outcome written (bot/engine.py, `RequestMetrics`);
- backend calls' latency and errors by driver: the backends as the composition root builds them
  (`MeteredBackend`, bot/metered_backend.py), so the engine, tracker and digests are all counted;
- model calls, fallbacks to the grammar and grounding questions: read at scrape time from the
  routing's own counters (`RoutingCollector`), so the model path is not touched to count it;
- tracked jobs and the schedule's leadership: gauges read at scrape time from the store and the
  schedule; digest runs where the schedule's work is wired (bot/slack/serve.py).

A registry per `Metrics` (not prometheus_client's global one) so tests and the benchmark can run
several bots in one interpreter. Names follow Prometheus' conventions: `concierge_` prefix, the
unit in the name (`_seconds`), `_total` on counters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# Slack wants an ack within 3 s; answers (a plan, a queue) take up to tens of seconds on a busy cluster.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
ANSWER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BACKEND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Run = TypeVar("Run")


class RoutingCountsSource(Protocol):
    """bot.llm.routing.RoutedUnderstanding's `counts` (not imported: LangChain comes with it)."""

    @property
    def counts(self) -> _Counts: ...


class _Counts(Protocol):
    @property
    def llm(self) -> int: ...
    @property
    def fallback(self) -> int: ...
    @property
    def grounding_rejections(self) -> int: ...


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "concierge_requests", "Outcomes recorded for people's requests, by intent and outcome",
            ["intent", "outcome"], registry=r,
        )  # fmt: skip
        self.answer_seconds = Histogram(
            "concierge_answer_seconds", "From a request being recorded to its first outcome, by door",
            ["door"], buckets=ANSWER_BUCKETS, registry=r,
        )  # fmt: skip
        self.ack_seconds = Histogram(
            "concierge_slack_ack_seconds", "Slack requests: from Bolt receiving one to its listener's ack",
            buckets=ACK_BUCKETS, registry=r,
        )  # fmt: skip
        self.backend_call_seconds = Histogram(
            "concierge_backend_call_seconds", "Calls to a cluster backend, by driver and operation",
            ["driver", "operation"], buckets=BACKEND_BUCKETS, registry=r,
        )  # fmt: skip
        self.backend_errors = Counter(
            "concierge_backend_errors", "Backend calls that raised, by driver, operation and error class",
            ["driver", "operation", "error"], registry=r,
        )  # fmt: skip
        self.digest_runs = Counter(
            "concierge_digest_runs",
            "Scheduled digests run by this replica, by outcome",
            ["outcome"],
            registry=r,
        )
        self.tracked_jobs = Gauge(
            "concierge_tracked_jobs", "Jobs the tracker follows (not ended)", registry=r
        )
        self.leader = Gauge(
            "concierge_schedule_leader", "1 while this replica leads the schedule", registry=r
        )
        self.agent_passes = Counter(
            "concierge_agent_sampling_passes", "GPU sampling passes of the node agent, by outcome",
            ["outcome"], registry=r,
        )  # fmt: skip

    # --- what the engine reports (bot/engine.RequestMetrics) -------------------------------------

    def request_outcome(self, intent: str, outcome: str) -> None:
        self.requests.labels(intent, outcome).inc()

    def request_answered(self, door: str, seconds: float) -> None:
        self.answer_seconds.labels(door).observe(seconds)

    # --- read at scrape time ----------------------------------------------------------------

    def follow_routing(self, routing: RoutingCountsSource) -> None:
        self.registry.register(RoutingCollector(routing))

    def follow_tracked_jobs(self, count: Callable[[], int]) -> None:
        """`count` read at each scrape; NaN while it fails (the database down), not a failed scrape."""

        def counted() -> float:
            try:
                return float(count())
            except Exception:  # /readyz says why; the other metrics still come
                return math.nan

        self.tracked_jobs.set_function(counted)

    def follow_leadership(self, leads: Callable[[], bool]) -> None:
        self.leader.set_function(lambda: 1.0 if leads() else 0.0)

    def counted_digest(self, post: Callable[[Run], None]) -> Callable[[Run], None]:
        """`post` (the schedule's digest work), counting each run as posted or failed."""

        def counted(run: Run) -> None:
            try:
                post(run)
            except BaseException:
                self.digest_runs.labels("failed").inc()
                raise
            self.digest_runs.labels("posted").inc()

        return counted


class RoutingCollector(Collector):
    """The model's counters as the routing keeps them: calls (answered or failed), fallbacks to the
    grammar, and answers turned into a grounding question."""

    def __init__(self, routing: RoutingCountsSource) -> None:
        self._routing = routing

    def collect(self) -> Iterator[Metric]:
        counts = self._routing.counts
        calls = CounterMetricFamily(
            "concierge_model_calls", "Calls to the language model, by result", labels=["result"]
        )
        calls.add_metric(["answered"], counts.llm)
        calls.add_metric(["failed"], counts.fallback)
        yield calls
        yield CounterMetricFamily(
            "concierge_model_fallbacks",
            "Model failures answered by the grammar instead",
            value=counts.fallback,
        )
        yield CounterMetricFamily(
            "concierge_grounding_questions",
            "Model answers whose values the person's words did not support, asked back as a question",
            value=counts.grounding_rejections,
        )
