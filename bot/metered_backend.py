"""A `Backend` whose every call is timed and whose failures are counted, by driver and operation.

Wrapped once, where the composition root builds the backends (bot/assembly.build_backends), so
every caller (the engine, the tracker, the digests' queue reader) is measured without knowing it.
`metered` picks a class that has exactly the optional capabilities of the wrapped backend
(`scale`: Scalable, `gpu_limits`: LimitAware), so the engine's `isinstance` checks answer as they
would for the backend itself, timed too; any other attribute is the wrapped backend's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from backends.cluster_limits import ClusterLimits, LimitAware
from backends.protocol import Backend, Scalable
from backends.types import (
    Footprint,
    GpuPool,
    Identity,
    JobRef,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)
from bot.metrics import Metrics

T = TypeVar("T")


class MeteredBackend:
    def __init__(self, inner: Backend, driver: str, metrics: Metrics) -> None:
        self._inner = inner
        self.name: Target = inner.name
        self.driver = driver  # "slurm_cli", "slurm_rest", "k8s"
        self._metrics = metrics

    def _timed(self, operation: str, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        except Exception as e:
            self._metrics.backend_errors.labels(self.driver, operation, type(e).__name__).inc()
            raise
        finally:
            seconds = time.perf_counter() - started
            self._metrics.backend_call_seconds.labels(self.driver, operation).observe(seconds)

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        return self._timed("plan", lambda: self._inner.plan(footprint, identity, request_id))

    def validate(self, plan: Plan) -> list[str]:
        return self._timed("validate", lambda: self._inner.validate(plan))

    def submit(self, plan: Plan) -> JobRef:
        return self._timed("submit", lambda: self._inner.submit(plan))

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        return self._timed("statuses", lambda: self._inner.statuses(refs))

    def queue(self, filter: QueueFilter) -> list[JobStatus]:
        return self._timed("queue", lambda: self._inner.queue(filter))

    def explain(self, ref: JobRef) -> list[PendingReason]:
        return self._timed("explain", lambda: self._inner.explain(ref))

    def capacity(self) -> list[GpuPool]:
        return self._timed("capacity", lambda: self._inner.capacity())

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        self._timed("cancel", lambda: self._inner.cancel(ref, identity))

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._inner, attribute)  # AttributeError when the backend has none


class _Scaling(MeteredBackend):
    def scale(self, ref: JobRef, replicas: int, identity: Identity) -> None:
        inner = self._inner
        assert isinstance(inner, Scalable)
        self._timed("scale", lambda: inner.scale(ref, replicas, identity))


class _Limits(MeteredBackend):
    def gpu_limits(self, footprint: Footprint, identity: Identity) -> ClusterLimits:
        inner = self._inner
        assert isinstance(inner, LimitAware)
        return self._timed("gpu_limits", lambda: inner.gpu_limits(footprint, identity))


class _ScalingWithLimits(_Scaling, _Limits):
    pass


def metered(inner: Backend, driver: str, metrics: Metrics) -> MeteredBackend:
    """`inner` timed, with the same optional capabilities."""
    kinds = {
        (False, False): MeteredBackend,
        (True, False): _Scaling,
        (False, True): _Limits,
        (True, True): _ScalingWithLimits,
    }
    return kinds[(isinstance(inner, Scalable), isinstance(inner, LimitAware))](inner, driver, metrics)
