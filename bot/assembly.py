"""Builds the engine from settings: the one place that picks concrete classes for the seams.

Every door (CLI, Slack, scheduler) starts here, so they all run the same engine, backends, model
client and GPU telemetry; the doors themselves import no backend's internals (pyproject.toml's
import contracts). Tests build their own `Concierge` with fakes instead of going through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backends.gpu.settings import DcgmSettings, GpuTelemetrySettings
from backends.k8s.backend import KubernetesBackend
from backends.protocol import Backend
from backends.slurm.backend import SlurmBackend
from backends.types import GpuPool, PendingReason, Target
from bot.conversations import Conversations
from bot.conversations.context import ConversationContext
from bot.engine import Concierge, PhraseWhy, Understand
from bot.settings import Settings
from bot.store import Store
from bot.understanding.grammar import understand_in_detail
from policies import load_policy

log = logging.getLogger("concierge")

if TYPE_CHECKING:
    from backends.k8s.settings import K8sSettings
    from bot.llm.routing import Routed, RoutedUnderstanding
    from bot.metrics import Metrics
    from bot.telemetry.collect import EndpointDiscovery, GpuCollector
    from bot.telemetry.reporting import DigestMaker, ReadQueue


def open_store(settings: Settings) -> Store:
    store = Store(settings.database_url)
    store.migrate()
    return store


def build_backends(settings: Settings, metrics: Metrics | None = None) -> dict[Target, Backend]:
    """The configured backends; with `metrics` (serve), each call timed and its failures counted."""
    backends: dict[Target, Backend] = {"slurm": SlurmBackend(settings.slurm)}
    if settings.k8s is not None:  # configured by any CONCIERGE_K8S__… setting
        backends["k8s"] = KubernetesBackend(settings.k8s)
    if metrics is None:
        return backends
    from bot.metered_backend import metered

    drivers = {"slurm": f"slurm_{settings.slurm.driver}", "k8s": "k8s"}
    return {name: metered(b, drivers[name], metrics) for name, b in backends.items()}


def build_routing(settings: Settings) -> RoutedUnderstanding | None:
    """The language model's routing when CONCIERGE_LLM_URL is set, else None (the grammar alone).
    LangChain is imported only then: it costs seconds of start-up that grammar-only doors skip."""
    if not settings.llm.url:
        return None
    from bot.llm.client import LlmReader
    from bot.llm.routing import RoutedUnderstanding

    return RoutedUnderstanding(LlmReader.from_settings(settings.llm))


def build_phrasing(settings: Settings) -> PhraseWhy | None:
    """`why` answers phrased by the model when one is configured (facts from the backend only)."""
    if not settings.llm.url:
        return None
    from bot.llm.client import chat_model_from
    from bot.llm.phrasing import phrase_why

    chat = chat_model_from(settings.llm)

    def phrased(job_id: str, reasons: Sequence[PendingReason], pools: Sequence[GpuPool]) -> str:
        answer = phrase_why(job_id, reasons, pools, chat, settings.phrasing)
        if answer.fallback_reason:
            log.info("why %s answered by the template: %s", job_id, answer.fallback_reason)
        return answer.text

    return phrased


def build_concierge(
    settings: Settings,
    store: Store,
    routing: RoutedUnderstanding | None = None,
    backends: dict[Target, Backend] | None = None,
    metrics: Metrics | None = None,
) -> Concierge:
    """The engine; `backends` when the caller shares them (serve: with the tracker and digests);
    `metrics` (serve) counts its requests and outcomes."""
    understanding: Understand = understand_in_detail if routing is None else routing.understand
    return Concierge(
        store=store,
        backends=backends if backends is not None else build_backends(settings, metrics),
        understand=understanding,
        phrase_why=build_phrasing(settings),
        policy=load_policy(settings.policy_file),
        default_backend=settings.default_backend,
        metrics=metrics,
    )


def build_conversations(
    settings: Settings, concierge: Concierge, store: Store, routing: RoutedUnderstanding | None = None
) -> Conversations:
    """Chat (Slack threads, `concierge chat`): follow-ups go to the model with the thread so far."""
    if routing is None:
        return Conversations(concierge, store, settings=settings.conversation)

    def in_context(text: str, context: ConversationContext) -> Routed:
        from bot.llm.prompts import ConversationSoFar

        return routing.understand(text, ConversationSoFar(context.previous_texts, context.draft))

    return Conversations(concierge, store, in_context, settings.conversation)


def build_gpu_collector(settings: Settings, store: Store, dcgm_urls: Sequence[str] = ()) -> GpuCollector:
    """One GPU collection pass for every door (the schedule, `digest --now`, `agent --store`), with
    Slurm saying who holds which GPU; `dcgm_urls`: only those endpoints (a `digest --dcgm` snapshot)."""
    from backends.k8s.gpu_holders import gpu_holders
    from backends.slurm.gpu_allocation import gpu_allocations_reader
    from bot.telemetry.collect import GpuCollector

    snapshot = GpuTelemetrySettings(dcgm=DcgmSettings(endpoints=list(dcgm_urls)))
    sources = snapshot if dcgm_urls else settings.gpu
    return GpuCollector(
        sources,
        store.telemetry(settings.rollup),
        gpu_allocations_reader(settings.slurm),
        discover_endpoints=None if dcgm_urls else service_discovery(sources.dcgm, settings.k8s),
        interval_s=settings.schedule.sample_interval_s or 30.0,
        pod_holders=gpu_holders,
    )


def service_discovery(dcgm: DcgmSettings, k8s: K8sSettings | None) -> EndpointDiscovery | None:
    """The ready pods of the Service named in `dcgm.service`, when a Kubernetes cluster is configured."""
    if k8s is None or dcgm.service is None:
        return None
    from backends.k8s.service_endpoints import ServiceScrapeTargets

    return ServiceScrapeTargets.from_settings(k8s, dcgm.service, dcgm.service_port)


def build_digest_maker(
    settings: Settings, store: Store, read_queue: ReadQueue | None = None, *, accounting: bool = True
) -> DigestMaker:
    """The digest from the store's roll-ups, the queues (every backend's, unless `read_queue`),
    the schedulers' accounting for allocated GPU-hours (unless `accounting` is off: a one-reading
    snapshot holds no hours) and what was done about idle GPUs (read only: the schedule's nudger
    is the one that tells people)."""
    from bot.telemetry.nudges import nudge_overview
    from bot.telemetry.reporting import DigestMaker, accounting_reader, cluster_queue_reader

    backends = build_backends(settings)
    return DigestMaker(
        store.telemetry(settings.rollup),
        read_queue or cluster_queue_reader(backends),
        settings.digest,
        nudge_overview(store.schedule(), settings.nudges),
        accounting_reader(backends) if accounting else None,
    )
