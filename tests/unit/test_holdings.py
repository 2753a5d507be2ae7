"""What a person holds: each job counted once, whichever of the cluster and the store saw it first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backends.types import GpuAsk, JobRef, JobState, JobStatus
from bot.holdings import holdings_from, usage_of
from bot.store.store import InFlight

READ_AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _job(job_id: str, gpus: int, request_id: str | None, state: JobState = JobState.PENDING) -> JobStatus:
    return JobStatus(
        ref=JobRef(backend="slurm", job_id=job_id),
        name="x",
        user="alice",
        state=state,
        raw_state=state.value.upper(),
        gpus=(GpuAsk(count=gpus, gpu_type="a100"),),
        request_id=request_id,
    )


def _flight(request_id: str, gpus: int, *, job_id: str | None, submitting: bool, since: datetime) -> InFlight:
    return InFlight(
        request_id=request_id, backend="slurm", job_id=job_id, gpus=gpus, submitting=submitting, since=since
    )


def test_a_submitting_request_whose_job_is_already_listed_counts_once() -> None:
    # sbatch returned and the listing shows the job before the store marked it submitted.
    cluster = holdings_from("slurm", [_job("7", 1, "req-a")], READ_AT)
    flights = [_flight("req-a", 1, job_id=None, submitting=True, since=READ_AT - timedelta(seconds=1))]
    usage = usage_of(cluster, flights)
    assert (usage.gpus_in_use, usage.jobs_active) == (1, 1)


def test_a_submitting_request_not_yet_listed_counts() -> None:
    cluster = holdings_from("slurm", [_job("7", 1, "req-a")], READ_AT)
    flights = [_flight("req-b", 2, job_id=None, submitting=True, since=READ_AT - timedelta(seconds=5))]
    assert usage_of(cluster, flights).gpus_in_use == 3


def test_a_job_recorded_after_the_listing_counts_and_an_older_one_ended() -> None:
    cluster = holdings_from("slurm", [_job("9", 1, None, JobState.COMPLETED)], READ_AT)
    flights = [
        _flight("new", 2, job_id="10", submitting=False, since=READ_AT + timedelta(seconds=1)),
        _flight("old", 4, job_id="3", submitting=False, since=READ_AT - timedelta(minutes=5)),
    ]
    usage = usage_of(cluster, flights)
    assert (usage.gpus_in_use, usage.jobs_active) == (2, 1)


def test_without_a_listing_everything_in_flight_counts() -> None:
    flights = [
        _flight("a", 2, job_id="10", submitting=False, since=READ_AT - timedelta(days=1)),
        _flight("b", 1, job_id=None, submitting=True, since=READ_AT),
    ]
    assert usage_of(None, flights).gpus_in_use == 3
