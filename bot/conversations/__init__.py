"""Conversations at any door: drafts, one clarifying question at a time, a summary before submit.

`Conversations.reply(key, text, identity)` answers one message with a `Turn`; the Slack thread
(bot/slack/conversation.py) and the CLI's `concierge chat` (bot/cli/chat.py) only show turns.
"""

from bot.conversations.context import (
    ConversationContext,
    UnderstandInContext,
    grammar_in_context,
)
from bot.conversations.flow import Conversations
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
from bot.settings import ConversationSettings
from bot.store.conversation_tables import ConversationKey, ConversationState

__all__ = [
    "AlreadySubmitted",
    "Aside",
    "Asked",
    "Confirming",
    "ConversationContext",
    "ConversationKey",
    "ConversationSettings",
    "ConversationState",
    "Conversations",
    "Dropped",
    "MessagesCrossed",
    "Previewed",
    "Turn",
    "UnderstandInContext",
    "grammar_in_context",
    "request_text",
    "summary",
]
