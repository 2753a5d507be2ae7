"""Conversations over the real engine and store (SQLite and PostgreSQL); the cluster is a fake.

Each test talks to `Conversations.reply` as a door would, and checks both the turn it gets back
and what the store keeps: the draft, the pending question, the texts, and every request's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import RequestInvalid
from backends.types import Identity, Intent, IntentKind
from bot.conversations import (
    AlreadySubmitted,
    Aside,
    Asked,
    Confirming,
    ConversationContext,
    ConversationKey,
    Conversations,
    ConversationSettings,
    ConversationState,
    Dropped,
    MessagesCrossed,
    Previewed,
    Turn,
)
from bot.engine import Concierge
from bot.store import Store
from bot.understanding.grammar import understand
from policies import RequiredFields, load_policy
from tests.fakes.backend import FakeBackend

ALICE = Identity(requester="U-alice", unix_user="alice")
KEY = ConversationKey(door="slack", place="D1/1700000000.000100", requester=ALICE.requester)


def alice() -> Identity:
    return ALICE


def engine(
    store: Store, backend: FakeBackend | None = None, *, partition_required: bool = False
) -> Concierge:
    policy = load_policy(None)
    if partition_required:
        required = RequiredFields(batch=("command", "partition"), service=())
        policy = policy.model_copy(update={"required_fields": required})
    return Concierge(store, {"slurm": backend or FakeBackend()}, understand, policy)


def says(conversations: Conversations, *texts: str) -> list[Turn]:
    return [conversations.reply(KEY, text, alice) for text in texts]


def test_a_request_missing_its_command_and_gpus_is_asked_one_question_at_a_time(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    first, second, third = says(conversations, "I need GPUs", "python train.py", "2 a100")
    assert first == Asked("command", "What should the job run? Give the command, e.g. `python3 train.py`.")
    assert second == Asked(
        "gpus", "How many GPUs, and of which type? e.g. `2 A100` (or `CPU only` for a job without a GPU)."
    )
    assert isinstance(third, Previewed)
    assert (
        third.summary
        == "2 × A100 for 1 h (site default) on the default partition, running `python train.py`, as alice"
    )
    request = third.prepared.plan.request
    assert (request.gpus, request.gpu_type, request.command) == (2, "a100", "python train.py")
    state = store.conversation(KEY)
    assert (state.draft_request_id, state.pending_field, state.partial) == (
        third.prepared.request_id,
        None,
        None,
    )
    assert state.texts == ("I need GPUs", "python train.py", "2 a100") and state.turn == 3
    outcomes = [(r.text, r.outcome, r.error) for r in reversed(store.history(ALICE.requester))]
    assert outcomes == [
        ("I need GPUs", "needs_details", first.question),
        ("`python train.py`", "needs_details", second.question),  # the request so far, as one sentence
        ("`python train.py` on 2 a100", "planned", None),
    ]


def test_a_bare_number_answers_a_count_and_an_unusable_answer_is_asked_again(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    says(conversations, "I need GPUs to run python train.py")
    again, previewed = says(conversations, "whatever you think", "four")
    assert again == Asked(
        "gpus",
        "I found no GPU count or type in that. How many GPUs, and of which type? e.g. `2 "
        "A100` (or `CPU only` for a job without a GPU).",
    )
    assert isinstance(previewed, Previewed)
    assert (
        previewed.summary
        == "4 × GPU for 1 h (site default) on the default partition, running `python train.py`, as alice"
    )


def test_a_field_the_site_requires_is_asked_for(store: Store) -> None:
    conversations = Conversations(engine(store, partition_required=True), store)
    (asked,) = says(conversations, "2 a100 for 2 hours to run python x.py")
    assert asked == Asked(
        "partition",
        "This site needs the partition of every batch request: name the partition, e.g. 'on partition gpu'.",
    )
    (previewed,) = says(conversations, "partition gpu")
    assert isinstance(previewed, Previewed)
    assert previewed.summary == "2 × A100 for 2 h on partition gpu, running `python x.py`, as alice"


def test_follow_ups_change_the_draft_and_supersede_the_old_preview(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    first, more, longer, other = says(
        conversations,
        "2 a100 for 1 hour to run python x.py",
        "make it 4 GPUs",
        "for 3 hours",
        "1 h100 to run python other.py",  # another command: a new request, not a change
    )
    assert isinstance(first, Previewed) and isinstance(more, Previewed) and isinstance(longer, Previewed)
    assert more.superseded == first.prepared.request_id and longer.superseded == more.prepared.request_id
    assert longer.summary == "4 × A100 for 3 h on the default partition, running `python x.py`, as alice"
    assert isinstance(other, Previewed) and other.superseded is None
    assert (
        other.summary
        == "1 × H100 for 1 h (site default) on the default partition, running `python other.py`, as alice"
    )
    outcomes = {r.id: r.outcome for r in store.history(ALICE.requester)}
    assert outcomes[first.prepared.request_id] == outcomes[more.prepared.request_id] == "superseded"
    assert outcomes[longer.prepared.request_id] == outcomes[other.prepared.request_id] == "planned"
    assert store.conversation(KEY).draft_request_id == other.prepared.request_id


@pytest.mark.parametrize(
    ("follow_up", "asked"),
    [
        ("make it 2 or 4 GPUs", "which is it"),
        ("for 3 or maybe 6 hours", "which is it"),
        ("A100 or H100 instead", "which is it"),
        ("4 H100s for 3 Stunden", 'could not read "3 Stunden"'),
        ("1 H100 overnight", "how long"),
    ],
)
def test_a_follow_up_asked_back_changes_nothing(store: Store, follow_up: str, asked: str) -> None:
    conversations = Conversations(engine(store), store)
    (first,) = says(conversations, "2 a100 for 1 hour to run python x.py")
    assert isinstance(first, Previewed)
    with pytest.raises(RequestInvalid, match=asked):
        says(conversations, follow_up)
    assert store.conversation(KEY).draft_request_id == first.prepared.request_id
    assert store.request(first.prepared.request_id).outcome == "planned"  # not superseded by a guess


def test_submit_it_shows_the_summary_and_submits_nothing(store: Store) -> None:
    backend = FakeBackend()
    concierge = engine(store, backend)
    conversations = Conversations(concierge, store)
    previewed, confirming = says(conversations, "1 a100 for 30 minutes to run python x.py", "ok, submit it")
    assert isinstance(previewed, Previewed) and isinstance(confirming, Confirming)
    assert confirming.prepared.request_id == previewed.prepared.request_id
    assert (
        confirming.summary == "1 × A100 for 30 min on the default partition, running `python x.py`, as alice"
    )
    assert backend.submitted == []
    ref = concierge.submit(confirming.prepared)  # what a door does after the explicit yes
    (again,) = says(conversations, "submit it")
    assert again == AlreadySubmitted(previewed.prepared.request_id, ref.job_id)


def test_submit_it_with_nothing_to_submit_or_a_question_pending(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    with pytest.raises(RequestInvalid, match="there is no request here to submit yet"):
        says(conversations, "submit it")
    says(conversations, "I need 2 GPUs")
    (asked,) = says(conversations, "submit it")
    assert asked == Asked(
        "command",
        "Not yet: the request is not complete. "
        "What should the job run? Give the command, e.g. `python3 train.py`.",
    )
    # The failed "submit it" is still one of the conversation's texts.
    assert store.conversation(KEY).texts == ("submit it", "I need 2 GPUs", "submit it")


def test_never_mind_drops_the_draft_or_the_question(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    previewed, dropped = says(conversations, "1 a100 for 1 hour to run python x.py", "never mind")
    assert isinstance(previewed, Previewed) and dropped == Dropped(previewed.prepared.request_id)
    assert store.request(previewed.prepared.request_id).outcome == "declined"
    says(conversations, "I need GPUs")
    (dropped,) = says(conversations, "cancel it")
    assert dropped == Dropped(None)
    state = store.conversation(KEY)
    assert (state.draft_request_id, state.pending_field, state.partial) == (None, None, None)


def test_questions_are_asides_and_leave_the_pending_question_waiting(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    says(conversations, "I need 2 a100 for an hour")
    aside, previewed = says(conversations, "why is job 1234 pending?", "python x.py")
    assert aside == Aside(Intent(kind=IntentKind.WHY_PENDING, job="1234"))
    assert isinstance(previewed, Previewed)
    assert previewed.summary == "2 × A100 for 1 h on the default partition, running `python x.py`, as alice"


def test_a_new_instance_over_the_same_store_continues_the_conversation(database_url: str) -> None:
    first = Store(database_url)
    first.migrate()
    try:
        says(Conversations(engine(first), first), "I need GPUs to run python train.py")
    finally:
        first.close()
    restarted = Store(database_url)
    try:
        (previewed,) = says(Conversations(engine(restarted), restarted), "2 h100")
        assert isinstance(previewed, Previewed)
        assert (
            previewed.summary
            == "2 × H100 for 1 h (site default) on the default partition, running `python train.py`, as alice"
        )
    finally:
        restarted.close()


@dataclass
class Routed:
    """What the LLM router returns: the intent, and where it came from."""

    intent: Intent
    source: str = "llm"
    notice: str | None = None


@dataclass
class RecordingUnderstanding:
    """A pluggable understanding that remembers the context it was given."""

    contexts: list[ConversationContext] = field(default_factory=list)

    def __call__(self, text: str, context: ConversationContext) -> Routed:
        self.contexts.append(context)
        return Routed(understand(text))


def test_the_understanding_is_given_the_texts_and_the_draft(store: Store) -> None:
    understanding = RecordingUnderstanding()
    settings = ConversationSettings(max_texts=2, max_text_chars=100)
    conversations = Conversations(engine(store), store, understanding, settings)
    says(conversations, "2 a100 for 1 hour to run python x.py", "make it 1 GPU")
    with pytest.raises(RequestInvalid, match="I could not understand"):
        says(conversations, "x" * 150)  # refused, and still kept as one of the texts
    first, second, third = understanding.contexts
    assert first == ConversationContext()
    assert second.previous_texts == ("2 a100 for 1 hour to run python x.py",)
    assert second.draft is not None and (second.draft.gpus, second.draft.command) == (2, "python x.py")
    assert third.previous_texts == ("2 a100 for 1 hour to run python x.py", "make it 1 GPU")
    assert third.draft is not None and third.draft.gpus == 1
    assert store.conversation(KEY).texts == ("make it 1 GPU", "x" * 100)  # bounded: 2 texts, 100 chars


def test_two_replicas_answering_at_once_do_not_fork_the_conversation(store: Store) -> None:
    """Replica A reads the state; replica B answers another message and saves first; A's save then
    fails the compare-and-set, A says so, and A's own preview can no longer be submitted."""
    replica_b = Conversations(engine(store), store)
    interrupted: list[Turn] = []

    def understand_while_b_answers(text: str, context: ConversationContext) -> Intent:
        if not interrupted:
            interrupted.append(replica_b.reply(KEY, "1 a100 for 1 hour to run python b.py", alice))
        return understand(text)

    replica_a = Conversations(engine(store), store, understand_while_b_answers)
    with pytest.raises(MessagesCrossed, match="being answered at the same moment"):
        replica_a.reply(KEY, "1 a100 for 1 hour to run python a.py", alice)
    (b_turn,) = interrupted
    assert isinstance(b_turn, Previewed)
    assert store.conversation(KEY).draft_request_id == b_turn.prepared.request_id
    (a_request,) = [r for r in store.history(ALICE.requester) if "a.py" in r.text]
    assert a_request.outcome == "superseded"


def test_the_store_saves_a_turn_once_per_turn_read(store: Store) -> None:
    fresh = store.conversation(KEY)
    assert fresh == ConversationState(key=KEY)
    assert store.save_conversation(fresh.model_copy(update={"texts": ("one",), "pending_field": "gpus"}))
    assert not store.save_conversation(fresh.model_copy(update={"texts": ("other",)}))  # a second insert
    saved = store.conversation(KEY)
    assert (saved.turn, saved.texts, saved.pending_field) == (1, ("one",), "gpus")
    assert store.save_conversation(saved.model_copy(update={"partial": {"gpus": 2}}))
    assert not store.save_conversation(saved)  # read at turn 1, saved at 2 meanwhile
    assert store.conversation(KEY).partial == {"gpus": 2}
    with pytest.raises(Exception, match="no request nope"):
        store.save_conversation(store.conversation(KEY).model_copy(update={"draft_request_id": "nope"}))


def test_idle_conversations_are_forgotten_and_their_requests_stay(store: Store) -> None:
    conversations = Conversations(engine(store), store)
    (previewed,) = says(conversations, "1 a100 for 1 hour to run python x.py")
    assert isinstance(previewed, Previewed)
    assert store.forget_conversations(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert store.forget_conversations(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert store.conversation(KEY).turn == 0
    assert store.request(previewed.prepared.request_id).outcome == "planned"


def test_a_draft_submitted_meanwhile_is_not_settled_as_superseded(store: Store) -> None:
    backend = FakeBackend()
    concierge = engine(store, backend)
    conversations = Conversations(concierge, store)
    (previewed,) = says(conversations, "1 a100 for 1 hour to run python x.py")
    assert isinstance(previewed, Previewed)
    ref = concierge.submit(previewed.prepared)  # its Submit button, clicked on another replica
    (changed,) = says(conversations, "make it 2 GPUs")
    assert isinstance(changed, Previewed) and changed.superseded is None
    assert store.settle_open_request(previewed.prepared.request_id, "superseded") is False
    submitted = store.request(previewed.prepared.request_id)
    assert (submitted.outcome, submitted.job_id) == ("submitted", ref.job_id)
    assert store.settle_open_request(changed.prepared.request_id, "superseded") is True


def test_a_readings_notice_is_shown_with_its_preview_and_unknown_words_are_refused(store: Store) -> None:
    def degraded(text: str, context: ConversationContext) -> Routed:
        return Routed(understand(text), "grammar_fallback", "the assistant did not answer in 10 s")

    conversations = Conversations(engine(store), store, degraded)
    (previewed,) = says(conversations, "1 a100 for 1 hour to run python x.py")
    assert isinstance(previewed, Previewed)
    assert previewed.prepared.warnings == ("the assistant did not answer in 10 s",)
    with pytest.raises(RequestInvalid, match='I could not understand "make me a sandwich"'):
        says(conversations, "make me a sandwich")
    (refused,) = [r for r in store.history(ALICE.requester) if r.text == "make me a sandwich"]
    assert (
        refused.outcome == "invalid" and refused.intent is not None and refused.intent["intent"] == "unknown"
    )
    assert store.conversation(KEY).draft_request_id == previewed.prepared.request_id  # the draft stays
