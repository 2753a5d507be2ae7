"""The engine writes every request and its outcome to the store, whatever happens (both databases).

The backend here is a fake passed in through the constructor: it records what it was asked and
fails on demand, so each way a request can end is provoked and its stored outcome checked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import BackendRejected, ConfigurationError, PolicyDenied, RequestInvalid
from backends.types import (
    Identity,
    IntentKind,
)
from bot.answers import Question
from bot.engine import Concierge
from bot.store import Store
from bot.tracker import Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend

ALICE = Identity(requester="U-alice", unix_user="alice")


def engine(store: Store, backend: FakeBackend) -> Concierge:
    return Concierge(store, {"slurm": backend}, understand, load_policy(None))


def only_record(store: Store) -> tuple[str, str | None, str | None]:
    (record,) = store.history("U-alice")
    return record.outcome, record.error, record.job_id


def test_a_submission_is_stored_with_its_job(store: Store) -> None:
    backend = FakeBackend()
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "1 a100 for 1 hour to run python train.py", "cli")
    ref = concierge.submit(prepared)
    assert only_record(store) == ("submitted", None, ref.job_id)
    assert backend.submitted[0].request.time_limit_minutes == 60


def test_text_that_is_not_a_request_is_stored_as_invalid(store: Store) -> None:
    with pytest.raises(RequestInvalid):
        engine(store, FakeBackend()).prepare(ALICE, "make me a sandwich", "cli")
    outcome, error, _ = only_record(store)
    assert outcome == "invalid" and error and "sandwich" in error


def test_a_cluster_rejection_is_stored_with_its_message(store: Store) -> None:
    backend = FakeBackend(errors={"submit": BackendRejected("sbatch: error: invalid partition 'nope'")})
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "1 a100 for 1 hour, partition nope, run true", "cli")
    with pytest.raises(BackendRejected):
        concierge.submit(prepared)
    assert only_record(store) == ("failed", "sbatch: error: invalid partition 'nope'", None)


def test_an_unexpected_failure_is_stored_without_internals(store: Store) -> None:
    backend = FakeBackend(errors={"submit": RuntimeError("secret detail")})
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "1 a100 for 1 hour to run true", "cli")
    with pytest.raises(RuntimeError):
        concierge.submit(prepared)
    # A bug during submit cannot tell whether the job was made: the request stays `submitting`
    # (counted) until the reconciler finds its job or, after the grace, records that none was made.
    assert only_record(store) == ("submitting", None, None)
    later = datetime.now(UTC) + timedelta(minutes=6)
    Tracker(store, {"slurm": backend}, clock=lambda: later).poll_once()
    outcome, error, job = only_record(store)
    assert (outcome, job) == ("failed", None)
    assert error is not None and "nothing runs" in error and "secret" not in error


def test_a_denied_request_is_not_submitted_and_says_why(store: Store) -> None:
    backend = FakeBackend()
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "16 a100 for 100 hours to run python big.py", "cli")
    with pytest.raises(PolicyDenied, match="16 GPUs asked"):
        concierge.submit(prepared)
    assert backend.submitted == []
    outcome, error, _ = only_record(store)
    assert outcome == "denied" and error and "2 days" in error


def test_a_question_is_recorded_as_answered_or_failed(store: Store) -> None:
    concierge = engine(store, FakeBackend())
    concierge.answer(ALICE, Question(IntentKind.QUEUE), "cli")
    with pytest.raises(ConfigurationError, match="CONCIERGE_K8S__KUBECONFIG"):
        concierge.answer(ALICE, Question(IntentKind.QUEUE, mine=True, backend="k8s"), "cli")
    outcomes = {r.text: (r.outcome, r.error) for r in store.history("U-alice")}
    assert outcomes["queue"] == ("answered", None)
    assert outcomes["queue --mine"][0] == "failed"
    assert "k8s backend is not configured" in str(outcomes["queue --mine"][1])


def test_policy_check_judges_without_planning(store: Store) -> None:
    backend = FakeBackend()
    decision = engine(store, backend).check_policy(ALICE, "2 a100 for 2 hours: python x.py", "cli")
    assert decision.verdict.value == "allow"
    assert only_record(store)[0] == "policy_check"


def test_a_service_goes_where_the_site_routes_it(store: Store) -> None:
    concierge = engine(store, FakeBackend())
    with pytest.raises(ConfigurationError, match="k8s backend is not configured"):
        concierge.prepare(ALICE, "serve mistralai/Mistral-7B-Instruct-v0.3 on one gpu", "cli")
    prepared = concierge.prepare(ALICE, "1 gpu for 1 hour to run python x.py", "cli")
    assert prepared.plan.backend == "slurm"


def test_submit_judges_again_so_previews_cannot_add_up_past_the_limit(store: Store) -> None:
    backend = FakeBackend()
    concierge = engine(store, backend)
    # Two previews of 4 GPUs each are allowed on their own (the shipped limit is 8 per person)…
    first = concierge.prepare(ALICE, "4 a100 for 1 hour to run python a.py", "cli")
    second = concierge.prepare(ALICE, "4 a100 for 1 hour to run python b.py", "cli")
    third = concierge.prepare(ALICE, "4 a100 for 1 hour to run python c.py", "cli")
    assert first.allowed and second.allowed and third.allowed
    concierge.submit(first)
    concierge.submit(second)
    # …but the third, clicked after the first two were submitted, would hold 12 of 8.
    with pytest.raises(PolicyDenied, match="needs an approver"):
        concierge.submit(third)
    assert len(backend.submitted) == 2
    assert store.request(third.request_id).decision["verdict"] == "needs_approval"


@pytest.mark.parametrize(("per_job_then", "submitted"), [(4, True), (2, False)])
def test_an_approval_lifts_needs_approval_but_never_a_denial(
    store: Store, per_job_then: int, submitted: bool
) -> None:
    """6 GPUs need an approver (4 per job, up to twice that approved). By the time the approver clicks,
    the site may have lowered the limit so that 6 is refused outright: the approval does not lift that."""
    backend = FakeBackend()
    prepared = engine(store, backend).prepare(ALICE, "6 a100 for 1 hour to run python big.py", "cli")
    assert prepared.decision.verdict == "needs_approval"
    assert engine(store, backend).ask_approval(ALICE, prepared.request_id) is not None
    stricter = load_policy(None).model_copy(update={"max_gpus_per_job": per_job_then})
    later = Concierge(store, {"slurm": backend}, understand, stricter)
    approver = Identity(requester="U-carol", unix_user="carol")
    if submitted:
        later.submit_approved(prepared, approver)
    else:
        with pytest.raises(PolicyDenied, match=r"approval cannot lift: .*6 GPUs asked"):
            later.submit_approved(prepared, approver)
    assert len(backend.submitted) == (1 if submitted else 0)
    assert store.request(prepared.request_id).outcome == ("submitted" if submitted else "denied")
