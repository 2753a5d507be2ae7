"""What a person confirms before it is done: the model proposes, the person disposes.

One decision for every door (`confirmation_for`). A reading that would destroy something (cancel a
job, or a service: "scale down", "tear down" are cancel words to the grammar) and that the language
model had a hand in (it answered, or it was asked and failed, so the grammar answered in its place)
is never carried out on the reading alone. The door shows it with an explicit confirmation naming the
job: Slack a "Cancel job 1001" button beside "Keep it"; the CLI's `ask` and `chat` a y/N prompt that
is No by default (`ask --yes` does not answer it: --yes is for submitting a previewed request, and a
script that passes it must not have a model's reading cancel a job, so `ask` refuses with exit 2 and
names `concierge cancel`). Grounding (bot/llm/grounding.py) already refuses a cancel the words do
not order; this is the second lock, for words that do but were read by a model that can be talked
into things.

Explicit command syntax (`/gpu cancel 1001`, `concierge cancel 1001`, "cancel 1001" in a DM) never
reaches the model: the grammar reads it alone and the person typed the order itself, so it needs no
confirmation. Neither does a site without a model: the grammar's reading is the deterministic one.

A confirmation outlives the message that asks it (a Slack click may come on another replica, or
after a restart): the engine stores it as a request (`Concierge.answer` returns `ConfirmCancel`;
outcome `awaiting_confirmation`, the cancel recorded as its intent), and `Concierge.confirm` lets
only the person who was asked answer it, and only once (`confirmation_taken`: a claim in the store's
claims table), at every door alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Intent, IntentKind
from bot.store.lifecycle import AWAITING_CONFIRMATION

if TYPE_CHECKING:
    from bot.store import Store

DESTRUCTIVE = frozenset({IntentKind.CANCEL})
CONFIRMED = "answered"  # as every other question the concierge answered
KEPT = "declined"


class ModelReading(Protocol):
    """An answer of the model's routing (`bot.llm.routing.Routed`): the intent, and whether the
    model was asked for it."""

    @property
    def intent(self) -> Intent: ...

    @property
    def model_called(self) -> bool: ...


@dataclass(frozen=True)
class ConfirmFirst:
    """An order read from a person's words that they must confirm before it is carried out."""

    kind: IntentKind
    job: str

    @property
    def action(self) -> str:
        """The order in a few words, as a button or a prompt names it: "Cancel job 1001"."""
        return f"Cancel job {self.job}"

    @property
    def explanation(self) -> str:
        """Why the door asks, shown before the question."""
        return (
            f"The assistant read your message as an order to cancel job {self.job}; nothing is cancelled yet."
        )


def confirmation_for(understood: Intent | ModelReading) -> ConfirmFirst | None:
    """The confirmation to ask before acting on `understood`, or None when it may be acted on.

    A plain `Intent` is the grammar's own reading (no model at this door), acted on as read."""
    if isinstance(understood, Intent) or not understood.model_called:
        return None
    intent = understood.intent
    if intent.kind in DESTRUCTIVE and intent.job:
        return ConfirmFirst(intent.kind, intent.job)
    return None


def confirmation_taken(store: Store, request_id: str, requester: str) -> ConfirmFirst:
    """The stored order to carry out (or to drop) for the person who answered; raises when they are
    not the person who was asked, or when it was answered already (a second click, a retry)."""
    record = store.request(request_id)
    if record.requester != requester:
        raise PermissionDenied(
            "only the person who was asked can answer this confirmation; to cancel a job of your own, "
            "use `/gpu cancel <job id>`"
        )
    intent = record.intent or {}
    job = intent.get("job")
    kind = intent.get("intent")
    answered = record.outcome != AWAITING_CONFIRMATION
    if answered or not job or kind not in {k.value for k in DESTRUCTIVE}:
        outcome = record.outcome.replace("_", " ")
        raise RequestInvalid(f"this confirmation was answered already ({outcome})")
    if not store.claim(f"confirmation:{request_id}", requester):
        raise RequestInvalid("this confirmation is being answered already")
    return ConfirmFirst(IntentKind(kind), str(job))
