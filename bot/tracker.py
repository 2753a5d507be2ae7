"""The tracker: one poll follows every tracked job and records each state change once.

A poll costs one `statuses` call per backend whatever the number of jobs (FIELD_NOTES: never query
the controller per job), plus, where the backend keeps accounting (backends/job_accounting.py), one
`ended_jobs` call for the jobs that left its queue or ended in it this pass: their final state,
exit code or signal, reason, time run and GPU-hours. A job is `vanished` only when neither the
queue nor accounting knows it; while accounting cannot be asked, such jobs stay as they were and
the poll says so (`accounting_unavailable`). The store decides what is a transition, so two
trackers racing, or a restart, never record a change twice. Requests whose submit was cut short
are settled first (bot/reconciler.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from backends.errors import BackendUnavailable
from backends.job_accounting import EndedJobs
from backends.protocol import Backend
from backends.types import JobEnding, JobRef, JobState, JobStatus, Target
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
    # "backend: why" where accounting could not be asked: jobs that left the queue wait for it
    accounting_unavailable: tuple[str, ...] = ()


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
        accounting_unavailable: list[str] = []
        for name, refs in by_backend.items():
            backend = self._backends.get(name)
            if backend is None:
                continue
            try:
                statuses = backend.statuses(refs)
            except BackendUnavailable:
                unavailable.append(name)  # try again next poll; nothing is lost
                continue
            listed = {s.ref.job_id: s for s in statuses}
            ended = _ask_accounting(backend, [r for r in refs if _ended_or_gone(listed.get(r.job_id))])
            if ended.unavailable:
                accounting_unavailable.append(f"{name}: {ended.unavailable}")
            accounted = {s.ref.job_id: s for s in ended.statuses}
            now = self._clock()
            for status in statuses:
                self._record(_with_accounting(status, accounted.get(status.ref.job_id)), now, transitions)
            for ref in refs:
                if ref.job_id in listed:
                    continue
                known = accounted.get(ref.job_id)
                if known is not None and known.state.is_final:
                    self._record(known, now, transitions)
                elif known is not None or ended.unavailable:
                    # Accounting has no end for it yet (its records lag the queue), or cannot be
                    # asked: asked again next pass. (A job lost by `slurmctld -c` stays so until
                    # an admin settles it: sacctmgr show runawayjobs.)
                    continue
                elif self._store.record_state(ref, JobState.VANISHED, VANISHED_REASON, now):
                    transitions.append(Transition(ref, JobState.VANISHED, VANISHED_REASON))
        return PollResult(tuple(transitions), len(tracked), tuple(unavailable), tuple(accounting_unavailable))

    def _record(self, status: JobStatus, now: datetime, transitions: list[Transition]) -> None:
        if self._store.record_state(status.ref, status.state, status.reason, now, status.ending):
            transitions.append(Transition(status.ref, status.state, status.reason, status.ending))


def _ended_or_gone(status: JobStatus | None) -> bool:
    """Accounting is asked about a tracked job the queue no longer lists or lists as ended."""
    return status is None or status.state.is_final


def _ask_accounting(backend: Backend, refs: list[JobRef]) -> EndedJobs:
    # getattr, not isinstance: a wrapper (bot/metered_backend.py) may forward it without the class.
    ended_jobs = getattr(backend, "ended_jobs", None)
    if not refs or ended_jobs is None:
        return EndedJobs()
    try:
        answer = ended_jobs(refs)
        return answer if isinstance(answer, EndedJobs) else EndedJobs()
    except BackendUnavailable as e:
        return EndedJobs(unavailable=str(e))


def _with_accounting(status: JobStatus, accounted: JobStatus | None) -> JobStatus:
    """The queue's ended job with what only accounting has (time run, GPU-hours); the queue's word
    on state, exit code and output file stands."""
    if status.ending is None or accounted is None or accounted.ending is None:
        return status
    extra = {
        "elapsed_seconds": accounted.ending.elapsed_seconds or status.elapsed_seconds,
        "gpu_hours": accounted.ending.gpu_hours,
    }
    return replace(status, ending=status.ending.model_copy(update=extra))
