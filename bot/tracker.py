"""The tracker: one poll follows every tracked job and records each state change once.

A poll costs one `statuses` call per backend whatever the number of jobs (FIELD_NOTES: never query
the controller per job). The store decides what is a transition, so two trackers racing, or a
restart, never record a change twice. Requests whose submit was cut short are settled first
(bot/reconciler.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from backends.errors import BackendUnavailable
from backends.protocol import Backend
from backends.types import JobEnding, JobRef, JobState, Target
from bot.reconciler import Reconciler
from bot.store import Store

VANISHED_REASON = "no longer known to the scheduler; its end was not observed"


@dataclass(frozen=True)
class Transition:
    ref: JobRef
    state: JobState
    reason: str | None
    ending: JobEnding | None = None


@dataclass(frozen=True)
class PollResult:
    transitions: tuple[Transition, ...]
    tracked: int
    unavailable: tuple[str, ...]  # backends that could not be asked this time


class Tracker:
    def __init__(
        self,
        store: Store,
        backends: Mapping[Target, Backend],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._backends = backends
        self._clock = clock
        self._reconciler = Reconciler(store, backends, clock)

    def poll_once(self) -> PollResult:
        self._reconciler.settle()  # adopted jobs are tracked in this same pass
        by_backend: dict[Target, list[JobRef]] = defaultdict(list)
        tracked = self._store.tracked_jobs()
        for ref in tracked:
            by_backend[ref.backend].append(ref)
        transitions: list[Transition] = []
        unavailable: list[str] = []
        for name, refs in by_backend.items():
            backend = self._backends.get(name)
            if backend is None:
                continue
            try:
                statuses = backend.statuses(refs)
            except BackendUnavailable:
                unavailable.append(name)  # try again next poll; nothing is lost
                continue
            now = self._clock()
            seen = {s.ref.job_id for s in statuses}
            for status in statuses:
                if self._store.record_state(status.ref, status.state, status.reason, now, status.ending):
                    transitions.append(Transition(status.ref, status.state, status.reason, status.ending))
            for ref in refs:
                if ref.job_id not in seen and self._store.record_state(
                    ref, JobState.VANISHED, VANISHED_REASON, now
                ):
                    transitions.append(Transition(ref, JobState.VANISHED, VANISHED_REASON))
        return PollResult(tuple(transitions), len(tracked), tuple(unavailable))
