"""Kubernetes: reachable with the bot's credentials, and one SelfSubjectAccessReview per permission
the bot needs (backends/k8s/health.py)."""

from __future__ import annotations

from backends.errors import ConciergeError
from backends.k8s.health import access_reviews
from backends.k8s.settings import K8sSettings
from bot.doctor.report import Check, failed, passed

NAME = "kubernetes"
GRANT = "bind the bot's account to a ClusterRole that grants it (deploy/k8s has the least-privilege one)"


def kubernetes_checks(settings: K8sSettings) -> list[Check]:
    try:
        reviews = access_reviews(settings)
    except ConciergeError as e:
        return [
            failed(
                NAME,
                "reachable with the bot's credentials",
                e.message,
                "renew the bot's credentials in the kubeconfig CONCIERGE_K8S__KUBECONFIG names "
                "(or pick another CONCIERGE_K8S__CONTEXT)",
                e.exit_code,
            )
        ]
    checks = [passed(NAME, "reachable with the bot's credentials")]
    for review in reviews:
        what = f"may {review.permission} (cluster-wide)"
        if review.allowed:
            checks.append(passed(NAME, what))
        else:
            checks.append(failed(NAME, what, review.reason or "denied", GRANT))
    return checks
