"""Grammar first, the model when the grammar is unsure, the grammar again when the model fails.

The grammar answers in microseconds and is right about what it reads plainly, so text in the
slash-command form ("why 1234", "queue mine") or read with confidence ≥ HIGH_CONFIDENCE never
reaches the model. Nor does a question the grammar asks back about a choice ("2 or 4 A100s") or
a list of jobs ("cancel 1201 and 1202"), read with confidence 1: a model would pick one, and either
is in the person's words, so grounding could not tell. Everything else goes to the model with the
grammar's reading as a hint (and, in a thread, the conversation so far). When the model cannot be
used — it times out, is unreachable, answers with an HTTP error, or its answer does not fit the
request form — the grammar's reading is the answer, and `degraded` says why in a few words, so the
person knows the simpler reader answered. Nothing here waits longer than the client's timeout, and
nothing raises.

In a thread with a draft, a message the grammar reads as a request is a change to that draft
("make it 4 GPUs"): the grammar can read the change but not apply it, so such a message always goes
to the model, which answers with the whole request. `source` tells the caller which it got: "llm"
is the whole request; "grammar_fallback" is the new message alone, to merge as the Slack thread
does today.

Every value the model put in a request must be written in the person's own messages, and a
cancel must be ordered there in so many words (`bot.llm.grounding`); a value or an order that is
not makes the answer a question back to the person (an `unknown` intent with a message, which the
engine shows as it is), naming the values to confirm, and the rejection is counted. A cancel that
is grounded is still only proposed: `model_called` tells the doors that the model read it, and
`bot.confirmation` decides from that that the person confirms it first. The grounding check comes
in through the constructor, like the grammar, so the routing can be measured with any of them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from backends.errors import ConciergeError
from backends.types import Intent, IntentKind, JobRequest
from bot.llm.client import INVALID_ANSWER, LlmReader
from bot.llm.grounding import Unsupported, check_intent_grounding
from bot.llm.prompts import ConversationSoFar
from bot.understanding.grammar import HIGH_CONFIDENCE, understand_with_confidence, wall_time_from_the_clock
from bot.understanding.vocabulary import SUBCOMMANDS

log = logging.getLogger("concierge.llm")

Source = Literal["grammar", "llm", "grammar_fallback"]
Grammar = Callable[[str], tuple[Intent, float]]
# `/gpu` subcommands, typed as such (also in a DM): the grammar's home ground.
_COMMAND_SYNTAX_RE = re.compile(rf"^\s*(?:/\S+|(?:{'|'.join(SUBCOMMANDS)})(?:\s+\S+)?\s*$)", re.I)
UNEXPECTED_FAILURE = "the assistant failed in an unexpected way"


class GroundingCheck(Protocol):
    def __call__(
        self, intent: Intent, texts: Sequence[str], *, agreed: JobRequest | None = None
    ) -> Sequence[Unsupported]: ...


@dataclass(frozen=True)
class Routed:
    """The answer, who gave it, why the model was not used (if so), and how long it took."""

    intent: Intent
    source: Source
    degraded: str | None  # set when the model was wanted but could not be used
    latency_s: float
    grammar_confidence: float
    unsupported: tuple[Unsupported, ...] = ()  # the model's values grounding rejected

    @property
    def model_called(self) -> bool:
        return self.source != "grammar"

    @property
    def notice(self) -> str | None:
        """What a door shows beside the answer: that the simpler reader answered, and the grammar's
        own note on a request it read (how a clock time became a wall time)."""
        notes = []
        if self.degraded is not None:
            notes.append(
                f"Note: {self.degraded}, so the built-in parser read your message; check the details."
            )
        if self.intent.kind == IntentKind.SUBMIT and self.intent.message:
            notes.append(self.intent.message)
        return " ".join(notes) or None


@dataclass(frozen=True)
class RoutingCounts:
    grammar: int = 0  # answered by the grammar without asking the model
    llm: int = 0  # answered by the model (grounding rejections included)
    fallback: int = 0  # the model failed; the grammar answered
    grounding_rejections: int = 0  # model answers turned into a question


def _with_the_clock_time(
    hint: Intent, answer: Intent, agreed: JobRequest | None
) -> tuple[Intent, JobRequest | None]:
    """The model's request with the wall time the grammar counted from a clock-time end ("until
    6pm"), and that time agreed: the model knows no clock, so its own time (or none) would be a guess."""
    minutes = wall_time_from_the_clock(hint)
    if minutes is None or answer.kind != IntentKind.SUBMIT:
        return answer, agreed
    request = answer.request.model_copy(update={"time_limit_minutes": minutes})
    agreed = (agreed or JobRequest()).model_copy(update={"time_limit_minutes": minutes})
    return answer.model_copy(update={"request": request, "message": hint.message}), agreed


def is_command_syntax(text: str) -> bool:
    """`/gpu …`, or a subcommand with at most one argument ("why 1234", "queue mine")."""
    return bool(_COMMAND_SYNTAX_RE.match(text))


def confirmation_question(unsupported: Sequence[Unsupported]) -> str:
    """What to ask when the model filled in values the person's words do not state, or read an
    order (a cancel) the words do not give."""
    if any(u.field == "intent" for u in unsupported):
        order = next(u for u in unsupported if u.field == "intent")
        return (
            f"Nothing was done: the assistant read your message as an order to {order.value} a job, but "
            f"{order.why.replace('no message asks', 'your words do not ask')}. To cancel a job, say so "
            'plainly (e.g. "cancel 1234"); to ask for GPUs, say what you need, e.g. "2 A100s for 4 '
            'hours to run python3 train.py".'
        )
    named = "; ".join(f"{u.field.replace('_', ' ')} {u.value} ({u.why})" for u in unsupported)
    return (
        "Before I prepare this, please confirm: the assistant read values your message does not state: "
        f"{named}. Say the values you want in your own words (or leave them out for the site's "
        "defaults) and ask again."
    )


class RoutedUnderstanding:
    """Text (and a thread's conversation) → `Routed`. Without a reader the grammar answers all.

    `fast_path=False` sends every text to the model and `fallback=False` answers a failed model
    call with a question instead of the grammar's reading: together, the "LLM only" pipeline the
    evaluation compares the routing with."""

    def __init__(
        self,
        reader: LlmReader | None,
        grammar: Grammar = understand_with_confidence,
        grounding: GroundingCheck = check_intent_grounding,
        *,
        fast_path: bool = True,
        fallback: bool = True,
    ) -> None:
        self._reader = reader
        self._grammar = grammar
        self._grounding = grounding
        self._fast_path = fast_path
        self._fallback = fallback
        self._counts = RoutingCounts()
        self._lock = threading.Lock()

    @property
    def counts(self) -> RoutingCounts:
        with self._lock:
            return self._counts

    def intent(self, text: str) -> Intent:
        """The engine's `Understand` seam: just the intent."""
        return self.understand(text).intent

    def understand(self, text: str, conversation: ConversationSoFar | None = None) -> Routed:
        started = time.perf_counter()
        hint, confidence = self._grammar(text)
        if self._reader is None or (
            self._fast_path and self._grammar_suffices(text, hint, confidence, conversation)
        ):
            self._count(grammar=1)
            return Routed(hint, "grammar", None, time.perf_counter() - started, confidence)
        texts = (*(conversation.previous_texts if conversation else ()), text)
        agreed = conversation.draft if conversation else None
        try:
            answer, agreed = _with_the_clock_time(hint, self._reader.read(text, hint, conversation), agreed)
            unsupported = tuple(self._grounding(answer, texts, agreed=agreed))
        except ConciergeError as e:
            return self._degraded(hint, getattr(e, "reason", INVALID_ANSWER), started, confidence)
        except Exception:
            log.exception("routing a message to the language model failed unexpectedly")
            return self._degraded(hint, UNEXPECTED_FAILURE, started, confidence)
        if unsupported:
            self._count(llm=1, grounding_rejections=1)
            question = Intent(kind=IntentKind.UNKNOWN, message=confirmation_question(unsupported))
            return Routed(question, "llm", None, time.perf_counter() - started, confidence, unsupported)
        self._count(llm=1)
        return Routed(answer, "llm", None, time.perf_counter() - started, confidence)

    @staticmethod
    def _grammar_suffices(
        text: str, hint: Intent, confidence: float, conversation: ConversationSoFar | None
    ) -> bool:
        if conversation is not None and conversation.draft is not None and hint.kind == IntentKind.SUBMIT:
            return False  # a change to a draft: the grammar reads the change, the model the whole request
        return confidence >= HIGH_CONFIDENCE or is_command_syntax(text)

    def _degraded(self, hint: Intent, reason: str, started: float, confidence: float) -> Routed:
        if self._fallback:
            self._count(fallback=1)
            return Routed(hint, "grammar_fallback", reason, time.perf_counter() - started, confidence)
        self._count(llm=1)
        asked = Intent(kind=IntentKind.UNKNOWN, message=f"I could not read that: {reason}. Please try again.")
        return Routed(asked, "llm", reason, time.perf_counter() - started, confidence)

    def _count(
        self, grammar: int = 0, llm: int = 0, fallback: int = 0, grounding_rejections: int = 0
    ) -> None:
        with self._lock:
            c = self._counts
            self._counts = RoutingCounts(
                c.grammar + grammar,
                c.llm + llm,
                c.fallback + fallback,
                c.grounding_rejections + grounding_rejections,
            )
