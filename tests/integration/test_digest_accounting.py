"""Allocated GPU-hours from the scheduler's accounting, matched with the GPU samples (both databases).

The day 2026-03-02 (UTC), samples every 30 s:
- node1:0 held by alice's Slurm job 101 from 00:00 to 02:00 at 50 %; accounting agrees (1 GPU);
- bob's Slurm job 102 held 2 GPUs from 03:00:05 to 03:00:20, between two samples: no sample saw
  it, accounting has it;
- carol's Slurm job 103 ran from 22:00 the day before to 01:00 on node1:1 at 100 % (sampled only
  from 00:00): 1 GPU-hour in the day, 2 in the day before;
- node2:0 held by dave's Kubernetes pod 'ml/serve' from 00:00 to 01:00 at 20 %: no accounting
  lists it, so its sampled hour counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from backends.allocations import GpuAllocation
from backends.errors import BackendUnavailable
from backends.gpu.samples import GpuHolder
from backends.types import JobStatus
from bot.store import Store
from bot.store.telemetry import TelemetryStore
from bot.telemetry.digest import DigestThresholds, build_digest
from bot.telemetry.digest_text import hours_line
from bot.telemetry.reporting import DigestMaker, accounting_reader
from tests.fakes.backend import FakeBackend
from tests.helpers.telemetry import held

SINCE = datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)
ALICE = GpuHolder("slurm", "101", "alice")
CAROL = GpuHolder("slurm", "103", "carol")
DAVE = GpuHolder("k8s", "ml/serve", "dave")
A100 = "NVIDIA A100-SXM4-80GB"


def allocation(
    job_id: str, owner: str, gpus: int, start: datetime, end: datetime | None, partition: str
) -> GpuAllocation:
    return GpuAllocation("slurm", job_id, owner, "physics", partition, gpus, start, end)


ACCOUNTED = (
    allocation("101", "alice", 1, SINCE, SINCE + timedelta(hours=2), "gpu"),
    allocation(
        "102", "bob", 2, SINCE + timedelta(hours=3, seconds=5), SINCE + timedelta(hours=3, seconds=20), "gpu"
    ),
    allocation("103", "carol", 1, SINCE - timedelta(hours=2), SINCE + timedelta(hours=1), "short"),
)
BOB_HOURS = 2 * 15 / 3600


@pytest.fixture
def telemetry(store: Store) -> TelemetryStore:
    recorded = TelemetryStore(store.engine, clock=lambda: UNTIL)
    day = [
        *held("node1", "0", A100, SINCE, 2, 50.0, 1_000.0, ALICE),
        *held("node1", "1", A100, SINCE, 1, 100.0, 1_000.0, CAROL),
        *held("node2", "0", A100, SINCE, 1, 20.0, 1_000.0, DAVE),
    ]
    day.sort(key=lambda pair: pair[0].at)
    recorded.record(day)
    return recorded


def test_samples_alone_miss_the_job_that_ended_between_two_samples(telemetry: TelemetryStore) -> None:
    digest = build_digest(telemetry, SINCE, UNTIL, [], DigestThresholds())
    assert digest.cluster.allocated_gpu_hours == pytest.approx(4.0)
    assert "bob" not in {user.owner for user in digest.top_users}


def test_accounting_counts_every_job_and_the_samples_give_its_utilisation(telemetry: TelemetryStore) -> None:
    digest = build_digest(telemetry, SINCE, UNTIL, [], DigestThresholds(), allocations=ACCOUNTED)
    cluster = digest.cluster
    assert cluster.allocated_from == "accounting"
    assert cluster.allocated_gpu_hours == pytest.approx(2 + BOB_HOURS + 1 + 1)
    assert cluster.used_gpu_hours == pytest.approx(2 * 0.5 + 1 * 1.0 + 1 * 0.2)
    assert cluster.unmeasured_gpu_hours == pytest.approx(BOB_HOURS)  # no sample saw bob's job
    users = {user.owner: (user.jobs, user.gpu_hours) for user in digest.top_users}
    assert users["alice"] == (1, pytest.approx(2.0))
    assert users["bob"] == (1, pytest.approx(BOB_HOURS))
    assert users["carol"] == (1, pytest.approx(1.0))  # only the hour inside the day
    assert users["dave"] == (1, pytest.approx(1.0))  # sampled: no accounting lists the pod
    partitions = {group.name: group.allocated_gpu_hours for group in digest.by_partition}
    assert partitions == {"gpu": pytest.approx(2 + BOB_HOURS), "short": pytest.approx(1.0)}
    assert digest.trend is not None
    assert digest.trend.allocated_gpu_hours == pytest.approx(2.0)  # carol's job, the day before
    assert hours_line(cluster).endswith(
        "(allocated hours from the scheduler's accounting, utilisation from the GPU samples)"
    )


class AccountedBackend(FakeBackend):
    def __init__(self, allocations: Sequence[GpuAllocation] | Exception) -> None:
        super().__init__()
        self.allocations = allocations
        self.windows: list[tuple[datetime, datetime]] = []

    def gpu_allocations(self, since: datetime, until: datetime) -> Sequence[GpuAllocation]:
        self.windows.append((since, until))
        if isinstance(self.allocations, Exception):
            raise self.allocations
        return self.allocations


def no_queue() -> tuple[list[JobStatus], list[str]]:
    return [], []


def test_the_digest_maker_reads_accounting_once_for_the_period_and_the_one_before(
    telemetry: TelemetryStore,
) -> None:
    backend = AccountedBackend(ACCOUNTED)
    maker = DigestMaker(telemetry, no_queue, read_allocations=accounting_reader({"slurm": backend}))
    report = maker.make(SINCE, UNTIL, chart=False)
    assert report.digest.cluster.allocated_gpu_hours == pytest.approx(4 + BOB_HOURS)
    ((since, until),) = backend.windows
    assert since <= SINCE - timedelta(days=1) and until >= UNTIL
    assert report.notes == ()


def test_without_accounting_the_digest_says_so_and_counts_the_samples(telemetry: TelemetryStore) -> None:
    backend = AccountedBackend(BackendUnavailable("Slurm keeps no accounting here"))
    maker = DigestMaker(telemetry, no_queue, read_allocations=accounting_reader({"slurm": backend}))
    report = maker.make(SINCE, UNTIL, chart=False)
    assert report.digest.cluster.allocated_from == "samples"
    assert report.digest.cluster.allocated_gpu_hours == pytest.approx(4.0)
    assert report.notes == (
        "allocated GPU-hours are from the GPU samples alone: the slurm accounting: Slurm keeps no "
        "accounting here",
    )
