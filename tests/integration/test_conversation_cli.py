"""`concierge chat` through click's CliRunner: piped lines in, the real engine and store (SQLite and
PostgreSQL) behind it, a fake cluster that records what was submitted."""

from __future__ import annotations

import pytest
from click.testing import Result

from backends.types import Identity
from bot.engine import Concierge
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.helpers.chat import chat_with

ALICE = Identity(requester="alice", unix_user="alice")


def talk(store: Store, backend: FakeBackend, lines: str, *args: str) -> Result:
    concierge = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    return chat_with(concierge, store, ALICE, lines, *args)


def test_questions_then_an_explicit_yes_submits(store: Store) -> None:
    backend = FakeBackend(first_job_id=101)
    result = talk(store, backend, "I need GPUs\npython train.py\n2 a100\nyes\n")
    assert result.stdout.splitlines()[:3] == [
        'Session "default" as alice. "help" for examples.',
        "What should the job run? Give the command, e.g. `python3 train.py`.",
        "How many GPUs, and of which type? e.g. `2 A100` (or `CPU only` for a job without a GPU).",
    ]
    assert (
        "Submit 2 × A100 for 1 h (site default) on the default partition, running "
        "`python train.py`, as alice? [y/N] yes" in result.stdout
    )
    (plan,) = backend.submitted
    assert (plan.request.gpus, plan.request.command, plan.identity.unix_user) == (
        2,
        "python train.py",
        "alice",
    )
    assert f"Submitted job 101 (request {plan.request_id[:8]})." in result.stdout
    assert store.request(plan.request_id).outcome == "submitted"


def test_a_session_continues_later_and_another_session_starts_fresh(store: Store) -> None:
    backend = FakeBackend()
    talk(store, backend, "I need GPUs to run python train.py\n", "--session", "x")
    other = talk(store, backend, "", "--session", "y")
    assert other.stdout == 'Session "y" as alice. "help" for examples.\n'
    later = talk(store, backend, "2 h100\nyes\n", "--session", "x")
    assert later.stdout.splitlines()[:2] == [
        'Continuing session "x" as alice.',
        "Still to answer: How many GPUs, and of which type? e.g. `2 A100` (or "
        "`CPU only` for a job without a GPU).",
    ]
    (plan,) = backend.submitted
    assert (plan.request.gpus, plan.request.gpu_type, plan.request.command) == (2, "h100", "python train.py")


def test_no_submits_nothing_and_a_change_at_the_prompt_is_read_as_a_message(store: Store) -> None:
    backend = FakeBackend()
    first = talk(store, backend, "1 a100 for 1 hour to run python x.py\n\n")
    assert "[y/N] \nNot submitted; the draft is kept" in first.stdout and backend.submitted == []
    second = talk(store, backend, "make it 2 GPUs\nyes\n")
    assert (
        "Your draft: 1 × A100 for 1 h on the default partition, running `python x.py`, as alice."
        in second.stdout
    )
    assert "(This replaces request" in second.stdout
    (plan,) = backend.submitted
    assert plan.request.gpus == 2
    # The first preview was superseded by the change, and only the second became a job.
    outcomes = sorted(r.outcome for r in store.history(ALICE.requester))
    assert outcomes == ["submitted", "superseded"]


@pytest.mark.parametrize(
    ("change", "minutes"),
    # An end by the clock is counted from now, as in a whole request: tomorrow 6pm is 18 to 42 h away.
    [("for 2 hours", range(120, 121)), ("until tomorrow 6pm", range(18 * 60, 42 * 60 + 1))],
)
def test_a_change_typed_at_the_prompt_replaces_the_draft_before_anything_runs(
    store: Store, change: str, minutes: range
) -> None:
    backend = FakeBackend()
    result = talk(store, backend, f"1 a100 for 1 hour to run python x.py\n{change}\ny\n")
    assert f"[y/N] {change}\nRequest " in result.stdout and "Not submitted" not in result.stdout
    (plan,) = backend.submitted
    assert plan.request.time_limit_minutes in minutes


def test_questions_and_errors_are_answered_and_the_session_goes_on(store: Store) -> None:
    backend = FakeBackend()
    result = talk(store, backend, "queue\nmake me a sandwich\nsubmit it\nquit\n1 a100 to run x.py\n")
    assert "No jobs in the queue." in result.stdout
    assert 'error: I could not understand "make me a sandwich"' in result.stderr
    assert "error: there is no request here to submit yet" in result.stderr
    assert backend.submitted == []  # nothing after "quit" was read
    recorded = {r.text: r.outcome for r in store.history(ALICE.requester)}
    assert recorded == {"queue": "answered", "make me a sandwich": "invalid"}


def test_a_request_the_policy_does_not_allow_is_never_submitted(store: Store) -> None:
    backend = FakeBackend()
    result = talk(store, backend, "6 a100 for 1 hour to run python big.py\nsubmit it\nyes\n")
    assert "Policy: needs_approval" in result.stdout and "[y/N]" not in result.stdout
    assert "The policy does not allow this as it is" in result.stdout
    assert "error: not submitted, this request needs an approver: 6 GPUs asked" in result.stderr
    assert backend.submitted == []
