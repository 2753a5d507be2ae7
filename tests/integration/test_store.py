"""The store on real SQLite and PostgreSQL: every record round-trips, nothing asked is lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from backends.errors import JobNotFound
from backends.footprint import derive_footprint
from backends.types import Identity, Intent, IntentKind, JobRef, JobRequest, JobState, Plan
from bot.store import RequestRecord, Store
from policies import Decision, Verdict

REQUEST = JobRequest(gpus=2, gpu_type="a100", nodes=2, time_limit_minutes=240, command="python train.py")
ALICE = Identity(requester="U123", unix_user="alice", k8s_user="alice@example.org", k8s_groups=("ml", "gpu"))


def _plan(request_id: str, request: JobRequest = REQUEST) -> Plan:
    return Plan(
        backend="slurm",
        request_id=request_id,
        footprint=derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None),
        identity=ALICE,
        sbatch_script="#!/bin/bash\n#SBATCH --gres=gpu:a100:2\npython train.py\n",
        warnings=("made from configuration alone",),
    )


def _submitted(store: Store, requester: str, job_id: str, request: JobRequest = REQUEST) -> str:
    request_id = store.new_request(requester, "cli", f"job {job_id}")
    store.record_plan(request_id, _plan(request_id, request))
    store.record_submission(request_id, JobRef(backend="slurm", job_id=job_id))
    return request_id


def _assert_utc(moment: datetime) -> None:
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


def test_identity_is_upserted_and_read_back(store: Store) -> None:
    assert store.identity_for(ALICE.requester) is None
    store.map_identity(ALICE)
    assert store.identity_for(ALICE.requester) == ALICE

    promoted = ALICE.model_copy(update={"unix_user": "alice2", "k8s_groups": (), "is_admin": True})
    store.map_identity(promoted)
    assert store.identity_for(ALICE.requester) == promoted
    assert store.identity_for("someone-else") is None


def test_a_new_request_is_stored_at_once_with_utc_timestamps(store: Store) -> None:
    before = datetime.now(UTC)
    request_id = store.new_request("U123", "slack", "2 A100s for 4 hours to run python train.py")
    record = store.request(request_id)

    assert (record.id, record.requester, record.door) == (request_id, "U123", "slack")
    assert record.text == "2 A100s for 4 hours to run python train.py"
    assert record.outcome == "received"
    assert (record.intent, record.decision, record.plan, record.job_id, record.error) == (None,) * 5
    for moment in (record.created_at, record.updated_at):
        _assert_utc(moment)
        assert before - timedelta(seconds=1) <= moment <= datetime.now(UTC) + timedelta(seconds=1)


def test_every_step_of_a_submission_round_trips(store: Store) -> None:
    request_id = store.new_request("U123", "cli", "2 a100 on 2 nodes for 4h python train.py")
    intent = Intent(kind=IntentKind.SUBMIT, request=REQUEST)
    decision = Decision(verdict=Verdict.NEEDS_APPROVAL, reasons=("this asks 16 GPU-hours", "second reason"))
    plan = _plan(request_id)
    ref = JobRef(backend="slurm", job_id="4242", cluster="local")

    store.record_intent(request_id, intent)
    store.record_decision(request_id, decision)
    store.record_plan(request_id, plan)
    store.record_submission(request_id, ref)
    record = store.request(request_id)

    assert record.intent == intent.to_contract()
    assert record.decision == decision.to_contract()
    assert record.plan is not None and Plan.model_validate(record.plan) == plan
    assert record.backend == "slurm"
    assert record.gpus == plan.footprint.total_gpus == 4
    assert record.job_ref == ref
    assert record.outcome == "submitted"
    assert record.updated_at >= record.created_at


def test_a_failed_submission_is_kept_with_its_error(store: Store) -> None:
    request_id = store.new_request("U123", "cli", "2 a100 on partition nope")
    store.record_plan(request_id, _plan(request_id))
    store.record_outcome(request_id, "failed", "sbatch: error: invalid partition specified: nope")

    record = store.request(request_id)
    assert record.outcome == "failed"
    assert record.error == "sbatch: error: invalid partition specified: nope"
    assert record.job_id is None
    assert [r.id for r in store.history("U123")] == [request_id]
    assert store.tracked_jobs() == []


def test_a_repeated_idempotency_key_returns_the_first_request(store: Store) -> None:
    first = store.new_request("U123", "slack", "status 12", idempotency_key="Ev01")
    again = store.new_request("U123", "slack", "status 12", idempotency_key="Ev01")
    other = store.new_request("U123", "slack", "status 12", idempotency_key="Ev02")
    unkeyed = [store.new_request("U123", "cli", "status 12") for _ in range(2)]

    assert again == first
    assert len({first, other, *unkeyed}) == 4
    assert len(store.history("U123")) == 4


def test_unknown_requests_raise_a_helpful_error(store: Store) -> None:
    with pytest.raises(JobNotFound, match=r"no request nope is recorded.*concierge history"):
        store.request("nope")
    with pytest.raises(JobNotFound, match="no request nope"):
        store.record_outcome("nope", "failed", "boom")
    assert store.request_for_job(JobRef(backend="slurm", job_id="1")) is None


def test_history_is_newest_first_and_per_requester(store: Store) -> None:
    alice = [store.new_request("alice", "cli", f"alice {n}") for n in range(3)]
    bob = [store.new_request("bob", "slack", f"bob {n}") for n in range(2)]

    assert [r.id for r in store.history("alice")] == alice[::-1]
    assert [r.id for r in store.history("bob")] == bob[::-1]
    everyone = store.history(None)
    assert [r.id for r in everyone] == [*alice, *bob][::-1]
    assert [r.id for r in store.history(None, limit=2)] == bob[::-1]
    assert store.history("carol") == []
    created = [r.created_at for r in everyone]
    assert created == sorted(created, reverse=True)


def test_history_carries_each_request_s_states(store: Store) -> None:
    request_id = _submitted(store, "alice", "7")
    ref = JobRef(backend="slurm", job_id="7")
    start = datetime.now(UTC)
    store.record_state(ref, JobState.PENDING, "Resources", start)
    store.record_state(ref, JobState.RUNNING, None, start + timedelta(seconds=5))

    (record,) = store.history("alice")
    assert record.id == request_id
    assert [(s.state, s.reason) for s in record.states] == [
        (JobState.PENDING, "Resources"),
        (JobState.RUNNING, None),
    ]
    assert record.last_state is not None and record.last_state.state == JobState.RUNNING


def _held(store: Store, requester: str) -> tuple[int, int]:
    """(GPUs, jobs) the store has in flight for the person."""
    in_flight = store.in_flight(requester)
    return sum(request.gpus for request in in_flight), len(in_flight)


def test_tracked_jobs_and_usage_count_submitted_unfinished_jobs(store: Store) -> None:
    _submitted(store, "alice", "10", REQUEST)  # 2 GPUs on each of 2 nodes
    _submitted(store, "alice", "11", JobRequest(gpus=1, command="x"))
    _submitted(store, "alice", "9", JobRequest(gpus=3, command="x"))
    _submitted(store, "bob", "12", JobRequest(gpus=2, command="x"))
    denied = store.new_request("alice", "cli", "64 gpus")
    store.record_outcome(denied, "denied", "too many GPUs")
    store.record_state(JobRef(backend="slurm", job_id="9"), JobState.COMPLETED, None, datetime.now(UTC))

    assert [ref.job_id for ref in store.tracked_jobs()] == ["10", "11", "12"]
    assert _held(store, "alice") == (5, 2)
    assert _held(store, "bob") == (2, 1)
    assert _held(store, "carol") == (0, 0)


def test_request_for_job_finds_the_newest_request_for_a_reused_job_id(store: Store) -> None:
    older = _submitted(store, "alice", "3")
    newer = _submitted(store, "bob", "3")
    elsewhere = store.new_request("carol", "cli", "k8s job")
    store.record_submission(elsewhere, JobRef(backend="k8s", job_id="3"))

    found = store.request_for_job(JobRef(backend="slurm", job_id="3"))
    assert isinstance(found, RequestRecord) and found.id == newer != older
    k8s = store.request_for_job(JobRef(backend="k8s", job_id="3"))
    assert k8s is not None and k8s.id == elsewhere


def test_a_reused_job_id_closes_the_older_unfinished_request(store: Store) -> None:
    older = _submitted(store, "alice", "3", JobRequest(gpus=2, command="x"))
    finished = _submitted(store, "alice", "4")
    store.record_state(JobRef(backend="slurm", job_id="4"), JobState.COMPLETED, None, datetime.now(UTC))
    newer = _submitted(store, "bob", "3")
    _submitted(store, "carol", "4")

    closed = store.request(older)
    assert closed.outcome == "unknown"
    assert closed.error is not None and newer in closed.error
    assert store.request(finished).outcome == "completed"  # a finished job keeps its outcome
    assert store.request(newer).outcome == "submitted"
    assert _held(store, "alice") == (0, 0)
    assert [ref.job_id for ref in store.tracked_jobs()] == ["3", "4"]


def test_a_ref_naming_its_cluster_matches_only_that_cluster_or_none(store: Store) -> None:
    on_a = store.new_request("alice", "cli", "a")
    store.record_submission(on_a, JobRef(backend="slurm", job_id="5", cluster="a"))

    assert store.request_for_job(JobRef(backend="slurm", job_id="5", cluster="b")) is None
    found = store.request_for_job(JobRef(backend="slurm", job_id="5", cluster="a"))
    assert found is not None and found.id == on_a
    unnamed = store.request_for_job(JobRef(backend="slurm", job_id="5"))
    assert unnamed is not None and unnamed.id == on_a


def test_audit_events_round_trip_newest_first(store: Store) -> None:
    store.audit("alice", "submit", "101", {"request_id": "r1", "gpus": [1, 2]})
    store.audit("root", "cancel", "101")
    store.audit("bob", "submit", "102", {"request_id": "r2"})

    events = store.audit_events("101")
    assert [(e.actor, e.action, e.subject, e.detail) for e in events] == [
        ("root", "cancel", "101", None),
        ("alice", "submit", "101", {"request_id": "r1", "gpus": [1, 2]}),
    ]
    assert len(store.audit_events()) == 3
    for event in events:
        _assert_utc(event.at)


def test_timestamps_in_other_zones_come_back_as_the_same_instant_in_utc(store: Store) -> None:
    _submitted(store, "alice", "77")
    ref = JobRef(backend="slurm", job_id="77")
    in_paris = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    store.record_state(ref, JobState.RUNNING, None, in_paris)

    record = store.request_for_job(ref)
    assert record is not None
    (change,) = record.states
    _assert_utc(change.observed_at)
    assert change.observed_at == in_paris
    assert change.observed_at.hour == 12 and change.observed_at.microsecond == 123456


def test_naive_timestamps_are_refused(store: Store) -> None:
    _submitted(store, "alice", "78")
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_state(JobRef(backend="slurm", job_id="78"), JobState.RUNNING, None, datetime(2026, 3, 1))


def test_two_stores_on_one_database_see_each_other(database_url: str) -> None:
    writer, reader = Store(database_url), Store(database_url)
    try:
        writer.migrate()
        reader.migrate()
        request_id = writer.new_request("alice", "cli", "shared")
        assert reader.request(request_id).text == "shared"
    finally:
        writer.close()
        reader.close()
