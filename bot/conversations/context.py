"""What a conversation's understanding reads: the person's message, their earlier messages, the draft.

The understanding is pluggable. The grammar (the default) reads each message on its own, and the
conversation merges what it read into the draft; a language model can read the message in its
context and answer with the whole request as it stands. Either plugs in unchanged: the callable
may return an `Intent`, or anything holding one as `.intent` (the LLM router's result); a `.notice`
it carries (why the model was not used) is shown with the preview, as the engine shows it.

`previous_texts` and `draft` carry the same names as the LLM prompt's `ConversationSoFar`, so a
router that reads those attributes can take this context as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backends.types import Intent, JobRequest
from bot.engine import Understood
from bot.understanding.grammar import Understanding, understand_in_detail


@dataclass(frozen=True)
class ConversationContext:
    previous_texts: tuple[str, ...] = ()  # the person's earlier messages, oldest first
    draft: JobRequest | None = None  # the request as it stands (previewed, or being gathered)
    pending_field: str | None = None  # the field a clarifying question asked for, if one waits


# Intent from the grammar; `Understood` (intent + notice) from the model routing.
UnderstandInContext = Callable[[str, ConversationContext], Intent | Understood]


def grammar_in_context(text: str, context: ConversationContext) -> Understanding:
    """The grammar: it reads the message alone; merging into the draft is the conversation's job."""
    return understand_in_detail(text)
