"""Runs the checks of everything configured, in the order a request meets them."""

from __future__ import annotations

from backends.errors import ConciergeError
from bot.doctor.report import Check, failed
from bot.settings import Settings


def run_checks(settings: Settings) -> list[Check]:
    from bot.doctor.slurm import slurm_checks

    checks = _store_checks(settings)
    checks.extend(slurm_checks(settings.slurm))
    if settings.k8s is not None:
        from bot.doctor.kubernetes import kubernetes_checks

        checks.extend(kubernetes_checks(settings.k8s))
    if settings.llm.url:
        from bot.doctor.model import model_checks

        checks.extend(model_checks(settings.llm))
    if settings.slack is not None:
        from bot.doctor.slack import slack_checks

        checks.extend(slack_checks(settings.slack))
    if settings.gpu.has_cluster_sources:
        from bot.doctor.gpu import gpu_checks

        checks.extend(gpu_checks(settings.gpu))
    return checks


def _store_checks(settings: Settings) -> list[Check]:
    """The database, then (where `serve` runs: Slack configured) the schedule's leader in it."""
    from bot.doctor.database import database_checks
    from bot.doctor.schedule import schedule_checks
    from bot.store import Store
    from bot.store.database import shown, supported_url

    try:
        url = supported_url(settings.database_url)
        store = Store(settings.database_url)  # not open_store: doctor never migrates
    except ConciergeError as e:
        return [failed("database", "URL usable", e.message, "fix CONCIERGE_DATABASE_URL", e.exit_code)]
    try:
        checks = database_checks(store, shown(url))
        if settings.slack is not None and all(check.ok for check in checks[:2]):
            checks.extend(schedule_checks(store))
        return checks
    finally:
        store.close()
