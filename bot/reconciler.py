"""The reconciler: settles requests left `submitting` when their submit was cut short.

A request is stored as `submitting` before the cluster is asked, and the job carries its request
id (Slurm comment, Kubernetes label). If the database failed right after sbatch, or the process
was killed in between, the row stays `submitting`. Each tracker pass (one listing per backend,
only when such rows exist) then finds the job by its request id and records it (tracked and
counted from then on), or, once `grace` has passed with no such job, records that none was made.
The grace is longer than any submit can take (the Slurm command timeout, a Kubernetes create),
so a submit still under way in another process is never called failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from backends.errors import BackendUnavailable
from backends.protocol import Backend
from backends.types import JobRef, QueueFilter, Target
from bot.store import Store
from bot.store.store import InFlight

DEFAULT_GRACE = timedelta(minutes=5)
NEVER_MADE = (
    "the submission was cut short before the cluster accepted it: no job carries request id {id}, "
    "so nothing runs; ask again"
)


@dataclass(frozen=True)
class Settled:
    request_id: str
    ref: JobRef | None  # the job adopted, or None when none was made


class Reconciler:
    def __init__(
        self,
        store: Store,
        backends: Mapping[Target, Backend],
        clock: Callable[[], datetime],
        grace: timedelta = DEFAULT_GRACE,
    ) -> None:
        self._store = store
        self._backends = backends
        self._clock = clock
        self._grace = grace

    def settle(self) -> list[Settled]:
        by_backend: dict[str | None, list[InFlight]] = defaultdict(list)
        for request in self._store.submitting():
            by_backend[request.backend].append(request)
        settled: list[Settled] = []
        for name, backend in self._backends.items():
            requests = by_backend.get(name)
            if not requests:
                continue
            try:
                tagged = {s.request_id: s.ref for s in backend.queue(QueueFilter()) if s.request_id}
            except BackendUnavailable:
                continue  # nothing can be told now; next pass
            now = self._clock()
            for request in requests:
                ref = tagged.get(request.request_id)
                if ref is not None:
                    self._store.record_submission(request.request_id, ref)
                    settled.append(Settled(request.request_id, ref))
                elif now - request.since > self._grace and self._store.abandon_submission(
                    request.request_id, NEVER_MADE.format(id=request.request_id)
                ):
                    settled.append(Settled(request.request_id, None))
        return settled
