"""A conversation with a person, whatever the door: one message in, one `Turn` out.

The conversation's state (the draft, a pending clarifying question, the person's last messages)
lives in the store under its key, so a Slack thread or a CLI session continues after a restart
and on any replica. Each message is read in this order:

1. "never mind" / "cancel it" drops the draft, or the request being gathered.
2. "submit it" (or a bare "yes" to a draft) shows the draft again with its summary and asks for an
   explicit confirmation (Slack: the Submit button; CLI: y/N). Words alone never submit anything.
3. Otherwise the understanding reads the message in context. A question about jobs or help is an
   aside: the door answers it and the draft stays (a cancel the model read, after the person
   confirms it: bot/confirmation.py).
4. While a clarifying question waits, the message is its answer: what it states is folded into
   the request being gathered; the next missing field is asked for, or the request is planned.
5. With a draft, a message that states fields and names no other thing to run changes the draft
   ("make it 4 GPUs", "use H100 instead", "for 3 hours"): the revised request is planned afresh,
   and the old preview is settled `superseded` so its Submit no longer works.
6. Otherwise it is a new request: planned, or, when it lacks what it needs, asked about (one
   question, the most important missing field first). Words nobody understood are refused with
   the understanding's own message, recorded like every request; so are words understood in part
   with a question back about the rest ("2 or 4 A100s"), which change nothing, draft or answer.

Requests are planned with `Concierge.prepare_request` from the fields themselves, so what a
preview shows is exactly what its Submit runs, whoever read the words.

Messages of one conversation are answered one at a time in a process (a lock per key); across
replicas the save is a compare-and-set on the conversation's turn, and the loser says so
(`MessagesCrossed`) instead of overwriting the winner's draft.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache

from backends.errors import ConciergeError, RequestInvalid
from backends.types import Identity, Intent, IntentKind, JobRequest
from bot.confirmation import confirmation_for
from bot.conversations import drafts, phrases
from bot.conversations.context import (
    ConversationContext,
    UnderstandInContext,
    grammar_in_context,
)
from bot.conversations.drafts import Fields
from bot.conversations.questions import bare_count, is_answered, missing_field, not_found, question_for
from bot.conversations.summary import request_text, summary
from bot.conversations.turns import (
    AlreadySubmitted,
    Aside,
    Asked,
    Confirming,
    Dropped,
    MessagesCrossed,
    Previewed,
    Turn,
)
from bot.engine import Concierge, intent_and_notice
from bot.settings import ConversationSettings
from bot.store import RequestRecord, Store
from bot.store.conversation_tables import ConversationKey, ConversationState

ResolveIdentity = Callable[[], Identity]
EXAMPLE = '"2 A100s for 4 hours to run python3 train.py"'


class Conversations:
    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        understand: UnderstandInContext = grammar_in_context,
        settings: ConversationSettings | None = None,
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._understand = understand
        self._settings = settings or ConversationSettings()
        self._locks = _KeyLocks()

    def reply(self, key: ConversationKey, text: str, identity: ResolveIdentity) -> Turn:
        """Answer one message. `identity` is called (once) only when a request is planned or
        checked, so a person who is not mapped to a cluster user can still ask questions."""
        with self._locks.holding(key):
            state = self._store.conversation(key)
            kept = self._kept(state.texts, text)
            step = _Step(self._concierge, self._store, self._understand, state, cache(identity))
            try:
                turn, after = step.answer(text.strip())
            except ConciergeError:
                # The message still belongs to the conversation: a later follow-up is read with it.
                self._store.save_conversation(state.model_copy(update={"texts": kept}))
                raise
            if not self._store.save_conversation(after.model_copy(update={"texts": kept})):
                if isinstance(turn, Previewed):
                    self._store.settle_open_request(turn.prepared.request_id, drafts.SUPERSEDED)
                raise MessagesCrossed()
            # Only a still-open draft is settled: one whose Submit was just clicked keeps its job.
            if isinstance(turn, Previewed) and turn.superseded is not None:
                self._store.settle_open_request(turn.superseded, drafts.SUPERSEDED)
            if isinstance(turn, Dropped) and turn.request_id is not None:
                self._store.settle_open_request(turn.request_id, drafts.DECLINED)
            return turn

    def state(self, key: ConversationKey) -> ConversationState:
        return self._store.conversation(key)

    def _kept(self, texts: tuple[str, ...], text: str) -> tuple[str, ...]:
        cut = text.strip()[: self._settings.max_text_chars]
        return (*texts, cut)[-self._settings.max_texts :] if cut else texts


class _Step:
    """One message's answer: reads the state, returns the turn and the state to save."""

    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        understand: UnderstandInContext,
        state: ConversationState,
        identity: ResolveIdentity,
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._understand = understand
        self._state = state
        self._identity = identity
        self._door = state.key.door
        self._draft = store.request(state.draft_request_id) if state.draft_request_id else None
        self._notice: str | None = None

    def answer(self, text: str) -> tuple[Turn, ConversationState]:
        state, draft, pending = self._state, self._draft, self._state.pending_field
        if phrases.DROP_DRAFT.match(text) and (pending is not None or draft is not None):
            return self._dropped()
        if phrases.SUBMIT_IT.match(text) or (
            phrases.YES.match(text) and draft is not None and pending is None
        ):
            return self._submit_it()
        gathered = state.partial or {}
        context = ConversationContext(
            previous_texts=state.texts,
            draft=drafts.validated(gathered) if pending else (drafts.requested(draft) if draft else None),
            pending_field=pending,
        )
        reading = self._understand(text, context)
        intent, self._notice = intent_and_notice(reading)
        if intent.kind not in (IntentKind.SUBMIT, IntentKind.UNKNOWN):
            return Aside(intent, confirmation_for(reading)), state
        if intent.kind == IntentKind.UNKNOWN and intent.message and intent.request != JobRequest():
            # Read in part and asked about the rest ("2 or 4 A100s", "4 Stunden"): the question is the
            # answer, and nothing of it is folded into the draft or the request being gathered.
            raise self._not_understood(intent, text)
        said = drafts.stated_in(intent, text)
        if pending is not None:
            return self._answered(pending, gathered, said, text)
        if draft is not None and drafts.changes_the_draft(said, drafts.requested(draft)):
            return self._changed(draft, said)
        if intent.kind == IntentKind.SUBMIT:
            return self._planned_or_asked(intent.request, text)
        raise self._not_understood(intent, text)

    def _not_understood(self, intent: Intent, text: str) -> RequestInvalid:
        """The understanding's own message (a model's question may depend on the conversation),
        recorded like any request that could not be understood."""
        message = intent.message or f"I could not understand that; say what you need, e.g. {EXAMPLE}"
        self._concierge.not_planned(self._state.key.requester, self._door, text, intent, "invalid", message)
        return RequestInvalid(message)

    # --- the draft ---------------------------------------------------------------------------

    def _dropped(self) -> tuple[Turn, ConversationState]:
        draft = self._draft
        if self._state.pending_field is None and draft is not None and draft.job_id is not None:
            raise RequestInvalid(
                f"request {draft.id[:8]} is already job {draft.job_id}; "
                f"to stop it, say `cancel {draft.job_id}`"
            )
        declined = draft.id if draft is not None and drafts.is_open(draft) else None
        after = self._state.model_copy(
            update={"draft_request_id": None, "partial": None, "pending_field": None}
        )
        return Dropped(declined), after

    def _submit_it(self) -> tuple[Turn, ConversationState]:
        state, draft = self._state, self._draft
        if state.pending_field is not None:
            gathered = drafts.validated(state.partial or {})
            first = "Not yet: the request is not complete. " + question_for(state.pending_field, gathered)
            return Asked(state.pending_field, first), state
        if draft is None:
            raise RequestInvalid(
                f"there is no request here to submit yet; say what you need first, e.g. {EXAMPLE}"
            )
        if draft.job_id is not None:
            return AlreadySubmitted(draft.id, draft.job_id), state
        if not drafts.is_open(draft):
            raise RequestInvalid(
                f"request {draft.id[:8]} is {draft.outcome.replace('_', ' ')}, so it cannot be submitted; "
                'change it ("make it 2 GPUs") or say the whole request again for a new preview'
            )
        prepared = drafts.prepared_from(draft)
        return Confirming(prepared, summary(prepared.plan)), state

    def _changed(self, draft: RequestRecord, said: Fields) -> tuple[Turn, ConversationState]:
        revised = drafts.validated(drafts.folded(drafts.stated(drafts.requested(draft)), said))
        superseded = draft.id if drafts.is_open(draft) else None
        return self._planned_or_asked(revised, request_text(revised), superseded=superseded)

    # --- gathering a request -------------------------------------------------------------------

    def _answered(
        self, pending: str, gathered: Fields, said: Fields, text: str
    ) -> tuple[Turn, ConversationState]:
        fields = drafts.folded(gathered, said)
        request = drafts.validated(fields)
        if not is_answered(pending, request) and (count := bare_count(pending, text)) is not None:
            request = drafts.validated({**fields, pending: count})
        so_far = request_text(request) or text  # what is kept as asked: the request so far
        if not is_answered(pending, request):
            again = f"{not_found(pending)} {question_for(pending, request)}"
            return self._asked(request, pending, again, so_far)
        return self._planned_or_asked(request, so_far)

    def _planned_or_asked(
        self, request: JobRequest, text: str, *, superseded: str | None = None
    ) -> tuple[Turn, ConversationState]:
        identity = self._identity()
        field = missing_field(request, self._concierge.policy, identity)
        if field is not None:
            return self._asked(request, field, question_for(field, request), text)
        prepared = self._concierge.prepare_request(identity, request, self._door, text)
        if self._notice is not None:
            prepared = replace(prepared, warnings=(self._notice, *prepared.warnings))
        after = self._state.model_copy(
            update={"draft_request_id": prepared.request_id, "partial": None, "pending_field": None}
        )
        return Previewed(prepared, summary(prepared.plan), superseded), after

    def _asked(
        self, request: JobRequest, field: str, question: str, text: str
    ) -> tuple[Turn, ConversationState]:
        # Recorded like every message a person sends: what they asked, and that it needs more.
        asked = Intent(kind=IntentKind.SUBMIT, request=request)
        self._concierge.not_planned(
            self._state.key.requester, self._door, text, asked, drafts.NEEDS_DETAILS, question
        )
        after = self._state.model_copy(
            update={"partial": request.model_dump(mode="json", exclude_defaults=True), "pending_field": field}
        )
        return Asked(field, question), after


class _KeyLocks:
    """One lock per conversation key, forgotten when idle so the map stays small."""

    def __init__(self, keep: int = 10_000) -> None:
        self._keep = keep
        self._locks: dict[ConversationKey, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def holding(self, key: ConversationKey) -> Iterator[None]:
        with self._guard:
            if len(self._locks) > self._keep:
                for idle in [k for k, lock in self._locks.items() if not lock.locked()]:
                    del self._locks[idle]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield
