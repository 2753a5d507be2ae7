"""Builds the engine from settings: the one place that picks concrete classes for the seams.

Every door (CLI, Slack, scheduler) starts here, so they all run the same engine; tests build
their own `Concierge` with fakes instead of going through this module.
"""

from __future__ import annotations

from backends.k8s import KubernetesBackend
from backends.protocol import Backend
from backends.slurm.backend import SlurmBackend
from backends.types import Target
from bot.engine import Concierge
from bot.settings import Settings
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy


def open_store(settings: Settings) -> Store:
    store = Store(settings.database_url)
    store.migrate()
    return store


def build_backends(settings: Settings) -> dict[Target, Backend]:
    backends: dict[Target, Backend] = {"slurm": SlurmBackend(settings.slurm)}
    if settings.k8s is not None:  # configured by any CONCIERGE_K8S__… setting
        backends["k8s"] = KubernetesBackend(settings.k8s)
    return backends


def build_concierge(settings: Settings, store: Store) -> Concierge:
    return Concierge(
        store=store,
        backends=build_backends(settings),
        understand=understand,
        policy=load_policy(settings.policy_file),
        default_backend=settings.default_backend,
    )
