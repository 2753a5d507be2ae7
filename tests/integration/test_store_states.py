"""Job state transitions: each recorded once, even when two trackers race on one database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import JobNotFound
from backends.types import JobRef, JobState
from bot.store import Store
from tests.helpers.threads import at_once

REF = JobRef(backend="slurm", job_id="501")
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def submitted(store: Store) -> str:
    request_id = store.new_request("alice", "cli", "1 a100 for 1h python x.py")
    store.record_submission(request_id, REF)
    return request_id


def _states(store: Store, request_id: str) -> list[tuple[JobState, str | None]]:
    return [(change.state, change.reason) for change in store.request(request_id).states]


def test_the_same_state_twice_is_one_row(store: Store, submitted: str) -> None:
    assert store.record_state(REF, JobState.PENDING, "Priority", T0) is True
    assert store.record_state(REF, JobState.PENDING, "Priority", T0 + timedelta(seconds=15)) is False
    assert _states(store, submitted) == [(JobState.PENDING, "Priority")]
    assert store.request(submitted).states[0].observed_at == T0


def test_a_new_state_or_reason_is_a_new_row(store: Store, submitted: str) -> None:
    assert store.record_state(REF, JobState.PENDING, "Priority", T0)
    assert store.record_state(REF, JobState.PENDING, "Resources", T0 + timedelta(seconds=15))
    assert store.record_state(REF, JobState.RUNNING, None, T0 + timedelta(seconds=30))
    assert not store.record_state(REF, JobState.RUNNING, None, T0 + timedelta(seconds=45))

    assert _states(store, submitted) == [
        (JobState.PENDING, "Priority"),
        (JobState.PENDING, "Resources"),
        (JobState.RUNNING, None),
    ]
    assert store.request(submitted).outcome == "running"  # the lifecycle: submitted → running → ended
    assert store.tracked_jobs() == [REF]


@pytest.mark.parametrize("final", sorted(s for s in JobState if s.is_final))
def test_a_final_state_becomes_the_outcome_and_ends_tracking(
    store: Store, submitted: str, final: JobState
) -> None:
    store.record_state(REF, JobState.RUNNING, None, T0)
    assert store.record_state(REF, final, "done", T0 + timedelta(minutes=5))

    assert store.request(submitted).outcome == final.value
    assert store.tracked_jobs() == []


def test_an_older_observation_arriving_late_is_ignored(store: Store, submitted: str) -> None:
    store.record_state(REF, JobState.COMPLETED, None, T0 + timedelta(minutes=5))
    assert store.record_state(REF, JobState.RUNNING, None, T0) is False
    assert _states(store, submitted) == [(JobState.COMPLETED, None)]
    assert store.request(submitted).outcome == "completed"


def test_a_requeued_job_is_tracked_again(store: Store, submitted: str) -> None:
    store.record_state(REF, JobState.FAILED, "NodeFail", T0)
    assert store.record_state(REF, JobState.PENDING, "BeginTime", T0 + timedelta(minutes=1))
    assert store.request(submitted).outcome == "submitted"
    assert store.tracked_jobs() == [REF]


def test_a_job_not_submitted_through_the_concierge_is_refused(store: Store) -> None:
    with pytest.raises(JobNotFound, match="not submitted through the concierge"):
        store.record_state(JobRef(backend="slurm", job_id="999"), JobState.RUNNING, None, T0)


def test_states_go_to_the_newest_request_when_a_job_id_is_reused(store: Store, submitted: str) -> None:
    newer = store.new_request("bob", "cli", "again")
    store.record_submission(newer, REF)
    store.record_state(REF, JobState.RUNNING, None, T0)
    assert _states(store, newer) == [(JobState.RUNNING, None)]
    assert _states(store, submitted) == []


def test_two_trackers_racing_record_each_transition_once(database_url: str) -> None:
    """Two stores (as two processes would have) record the same observations at the same moment."""
    trackers = [Store(database_url) for _ in range(2)]
    trackers[0].migrate()
    request_id = trackers[0].new_request("alice", "cli", "race")
    trackers[0].record_submission(request_id, REF)
    sequence = [JobState.PENDING, JobState.RUNNING, JobState.SUSPENDED, JobState.RUNNING] * 5 + [
        JobState.COMPLETED
    ]
    start = threading.Barrier(len(trackers))
    won: list[list[bool]] = [[] for _ in trackers]
    failures: list[BaseException] = []

    def track(index: int) -> None:
        try:
            for step, state in enumerate(sequence):
                start.wait(timeout=30)
                observed = T0 + timedelta(seconds=step)
                won[index].append(trackers[index].record_state(REF, state, None, observed))
        except BaseException as e:
            failures.append(e)
            start.abort()

    try:
        at_once(track, [(i,) for i in range(len(trackers))])
        assert not failures, failures
        per_step = [sum(results) for results in zip(*won, strict=True)]
        assert per_step == [1] * len(sequence), "each transition must be won by exactly one tracker"
        recorded = trackers[1].request(request_id)
        assert [change.state for change in recorded.states] == sequence
        assert recorded.outcome == "completed"
    finally:
        for tracker in trackers:
            tracker.close()
