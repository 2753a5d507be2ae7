"""The bot's /metrics after a scripted session, parsed with prometheus_client's own parser: each
count is what happened. The engine runs over the store and a fake cluster wrapped as serve wraps
its backends (bot/assembly.build_backends → MeteredBackend); the model is the fake vLLM behind the
real client and routing. /healthz and /readyz answer from the same server.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backends.errors import BackendUnavailable
from backends.protocol import Scalable
from backends.types import Identity, IntentKind, JobRef
from bot.answers import Question
from bot.engine import Concierge
from bot.llm.client import LlmReader
from bot.llm.routing import RoutedUnderstanding
from bot.llm.settings import LlmSettings
from bot.metered_backend import metered
from bot.metrics import Metrics
from bot.metrics_http import serve_health
from bot.store import Store
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE
from tests.openai_fake import FakeVllm, HttpError, Structured

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def model() -> Iterator[FakeVllm]:
    with FakeVllm() as fake:
        yield fake


def test_a_session_is_counted_as_it_happened(store: Store, model: FakeVllm) -> None:
    metrics = Metrics()
    cluster = FakeBackend()
    backend = metered(cluster, "slurm_cli", metrics)
    # Every text goes to the model here (no fast path), so the model's three results are scripted.
    routing = RoutedUnderstanding(
        LlmReader.from_settings(LlmSettings(url=model.base_url, timeout_s=5)), fast_path=False
    )
    metrics.follow_routing(routing)
    store.map_identity(ALICE)
    engine = Concierge(store, {"slurm": backend}, routing.understand, load_policy(None), metrics=metrics)
    metrics.follow_tracked_jobs(lambda: len(store.tracked_jobs()))
    leads = [False]
    metrics.follow_leadership(lambda: leads[0])
    ready: list[str | None] = ["the database is not reachable yet"]
    server = serve_health(metrics.registry, "127.0.0.1", 0, lambda: ready[0])
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        # 1. A submit the model reads (answered), previewed and submitted: one job tracked.
        model.script(Structured({"intent": "submit", "workload": "batch", "gpus": 1, "gpu_type": "a100",
                                 "time_limit_minutes": 60, "command": "python3 train.py"}))  # fmt: skip
        prepared = engine.prepare(ALICE, "1 a100 for 1 hour to run python3 train.py", "slack")
        engine.submit(prepared)
        # 2. The model fails: the grammar answers (a fallback); the queue is read from the cluster.
        model.script(HttpError(500))
        asked = engine.read("what is waiting in the queue")  # as `concierge ask` reads, then answers
        engine.answer(ALICE, Question(asked.intent.kind), "cli")
        # 3. The model claims 64 GPUs nobody wrote: asked back (a grounding question), nothing planned.
        model.script(Structured({"intent": "submit", "workload": "batch", "gpus": 64, "gpu_type": "a100",
                                 "time_limit_minutes": 60, "command": "python3 a.py"}))  # fmt: skip
        with pytest.raises(Exception):  # noqa: B017 - not a submit: the engine says why
            engine.prepare(ALICE, "an a100 for an hour, python3 a.py", "slack")
        # 4. The cluster cannot be asked for capacity: a backend error and a failed request.
        cluster.errors["capacity"] = BackendUnavailable("slurmctld does not answer")
        with pytest.raises(BackendUnavailable):
            engine.answer(ALICE, Question(IntentKind.CAPACITY), "slack")
        leads[0] = True

        samples = scrape(url)
    finally:
        server.shutdown()
        server.server_close()

    counted = {
        (dict(labels)["intent"], dict(labels)["outcome"]): v
        for (name, labels), v in samples.items()
        if name == "concierge_requests_total"
    }
    assert counted == {
        ("submit", "submitted"): 1,
        ("queue", "answered"): 1,
        ("unknown", "invalid"): 1,
        ("capacity", "failed"): 1,
    }
    assert value(samples, "concierge_answer_seconds_count", door="slack") == 3
    assert value(samples, "concierge_answer_seconds_count", door="cli") == 1
    assert value(samples, "concierge_backend_call_seconds_count", driver="slurm_cli", operation="submit") == 1
    assert (
        value(samples, "concierge_backend_call_seconds_count", driver="slurm_cli", operation="capacity") == 1
    )
    errors = {
        dict(k[1])["operation"]: v for k, v in samples.items() if k[0] == "concierge_backend_errors_total"
    }
    assert errors == {"capacity": 1}
    assert value(samples, "concierge_model_calls_total", result="answered") == 2
    assert value(samples, "concierge_model_calls_total", result="failed") == 1
    assert value(samples, "concierge_model_fallbacks_total") == 1
    assert value(samples, "concierge_grounding_questions_total") == 1
    assert value(samples, "concierge_tracked_jobs") == 1
    assert value(samples, "concierge_schedule_leader") == 1


def test_healthz_is_alive_and_readyz_says_why_not_ready() -> None:
    ready: list[str | None] = ["not connected to Slack"]
    server = serve_health(Metrics().registry, "127.0.0.1", 0, lambda: ready[0])
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
            assert answer.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert refused.value.code == 503 and b"not connected to Slack" in refused.value.read()
        ready[0] = None
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()


def test_two_bots_in_one_process_keep_their_own_counts() -> None:
    first, second = Metrics(), Metrics()
    first.request_outcome("queue", "answered")
    assert (
        first.registry.get_sample_value(
            "concierge_requests_total", {"intent": "queue", "outcome": "answered"}
        )
        == 1
    )
    assert (
        second.registry.get_sample_value(
            "concierge_requests_total", {"intent": "queue", "outcome": "answered"}
        )
        is None
    )


class ScalableCluster(FakeBackend):
    def scale(self, ref: JobRef, replicas: int, identity: Identity) -> None:
        self.scaled = replicas


def test_a_metered_backend_keeps_its_capabilities() -> None:
    metrics = Metrics()
    assert not isinstance(metered(FakeBackend(), "slurm_cli", metrics), Scalable)
    cluster = ScalableCluster("k8s")
    wrapped = metered(cluster, "k8s", metrics)
    assert isinstance(wrapped, Scalable)
    wrapped.scale(JobRef(backend="k8s", job_id="vllm"), 2, ALICE)
    assert cluster.scaled == 2
    assert (
        metrics.registry.get_sample_value(
            "concierge_backend_call_seconds_count", {"driver": "k8s", "operation": "scale"}
        )
        == 1
    )


def test_digest_runs_are_counted_posted_or_failed() -> None:
    metrics = Metrics()
    posted = metrics.counted_digest(lambda run: None)

    def refused(run: object) -> None:
        raise BackendUnavailable("Slack could not be reached")

    failing = metrics.counted_digest(refused)
    posted("daily")
    with pytest.raises(BackendUnavailable):
        failing("daily")
    runs = metrics.registry.get_sample_value
    assert runs("concierge_digest_runs_total", {"outcome": "posted"}) == 1
    assert runs("concierge_digest_runs_total", {"outcome": "failed"}) == 1


def test_the_agent_counts_its_passes_and_serves_its_probes(store: Store) -> None:
    from backends.gpu.nvml import NvmlSampler
    from bot.settings import MetricsSettings
    from bot.telemetry.agent import SamplingLoop, agent_probes
    from tests.gpu_fakes.nvml import FakeGpu, FakeNvml

    metrics = Metrics()
    working = NvmlSampler(FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3", "GPU-aaa")]), "n1")
    driverless = NvmlSampler(FakeNvml([], init_error=9), "n2", init_retry_s=0)  # driver not loaded
    assert SamplingLoop(working, 0.01, [], metrics).run(threading.Event(), passes=2) == 2
    assert SamplingLoop(driverless, 0.01, [], metrics).run(threading.Event(), passes=3) == 3
    server = agent_probes(MetricsSettings(host="127.0.0.1", port=0), metrics, store)
    assert server is not None
    try:
        samples = scrape(f"http://127.0.0.1:{server.server_port}")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/readyz", timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, "concierge_agent_sampling_passes_total", outcome="ok") == 2
    assert value(samples, "concierge_agent_sampling_passes_total", outcome="failed") == 3
