"""A digest ready to show: the figures, the chart, and what could not be read — for every door.

The CLI prints it, the schedule posts it to Slack, a snapshot builds it from one scrape. Building
the figures and the chart is the same wherever it is shown, so it lives here, Slack-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from backends.allocations import AllocationAccounting, GpuAllocation
from backends.errors import BackendUnavailable
from backends.protocol import Backend
from backends.types import JobStatus, QueueFilter, Target
from bot.settings import DigestThresholds
from bot.store.telemetry import TelemetryStore
from bot.telemetry.chart import utilization_chart
from bot.telemetry.digest import Digest, IdleJob, build_digest
from bot.telemetry.nudges import IdleNote

_MARGIN = timedelta(hours=1)

# The whole queue across backends, and the backends that could not be read.
ReadQueue = Callable[[], tuple[Sequence[JobStatus], Sequence[str]]]


def cluster_queue_reader(backends: Mapping[Target, Backend]) -> ReadQueue:
    """Every backend's whole queue; a backend that cannot answer is named and the report goes on."""

    def read() -> tuple[list[JobStatus], list[str]]:
        jobs: list[JobStatus] = []
        problems: list[str] = []
        for name, backend in backends.items():
            try:
                jobs.extend(backend.queue(QueueFilter()))
            except BackendUnavailable as e:
                problems.append(f"the {name} queue could not be read: {e}")
        return jobs, problems

    return read


# The scheduler's GPU allocations over a window (None where no backend keeps accounting or it could
# not be read), and what could not be read, in words.
ReadAllocations = Callable[[datetime, datetime], tuple[Sequence[GpuAllocation] | None, Sequence[str]]]


def accounting_reader(backends: Mapping[Target, Backend]) -> ReadAllocations:
    """Allocations from every backend that keeps accounting (Slurm's sacct: one call per digest).
    If one cannot answer, the digest falls back to the samples for all, and says why."""

    def read(since: datetime, until: datetime) -> tuple[list[GpuAllocation] | None, list[str]]:
        found: list[GpuAllocation] = []
        asked = False
        for name, backend in backends.items():
            if not isinstance(backend, AllocationAccounting):
                continue
            asked = True
            try:
                found.extend(backend.gpu_allocations(since, until))
            except BackendUnavailable as e:
                return None, [
                    f"allocated GPU-hours are from the GPU samples alone: the {name} accounting: {e}"
                ]
        return (found if asked else None), []

    return read


@dataclass(frozen=True)
class DigestReport:
    digest: Digest
    chart_png: bytes | None
    notes: tuple[str, ...]  # sources that could not be read, in words
    nudges: tuple[IdleNote, ...] = ()  # what was done about each idle job, for the admins


# The nudges' view of the idle jobs (Nudger.admin_list): nudged, kept, cooling down, unreachable.
AdminList = Callable[[Sequence[IdleJob]], Sequence[IdleNote]]


class DigestMaker:
    def __init__(
        self,
        telemetry: TelemetryStore,
        read_queue: ReadQueue,
        thresholds: DigestThresholds | None = None,
        admin_list: AdminList | None = None,
        read_allocations: ReadAllocations | None = None,
    ) -> None:
        self._telemetry = telemetry
        self._read_queue = read_queue
        self._thresholds = thresholds or DigestThresholds()
        self._admin_list = admin_list
        self._read_allocations = read_allocations

    def make(
        self, since: datetime, until: datetime, *, chart: bool, notes: Sequence[str] = ()
    ) -> DigestReport:
        jobs, problems = self._read_queue()
        allocations: Sequence[GpuAllocation] | None = None
        if self._read_allocations is not None:
            # This period and the previous one (the trend), with a margin for whole buckets.
            allocations, unread = self._read_allocations(since - (until - since) - _MARGIN, until + _MARGIN)
            problems = [*problems, *unread]
        digest = build_digest(self._telemetry, since, until, jobs, self._thresholds, allocations=allocations)
        png = None
        if chart:
            png = utilization_chart(self._telemetry.utilization_grid(since, until), digest.by_model)
        nudges = tuple(self._admin_list(digest.idle)) if self._admin_list else ()
        return DigestReport(digest, png, (*notes, *problems), nudges)

    def make_until_now(
        self, period: timedelta, now: datetime, *, chart: bool, notes: Sequence[str] = ()
    ) -> DigestReport:
        """The last `period` up to `now`, the bucket `now` falls in included: periods are read as
        whole buckets, and a digest asked for now should show the minutes just collected."""
        since = now - period
        until = now + self._telemetry.resolution_for(since, now).bucket
        return self.make(since, until, chart=chart, notes=notes)
