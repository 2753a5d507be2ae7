"""`concierge chat` run through click's CliRunner over an engine the test built (fakes behind it)."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner, Result

from backends.types import Identity
from bot.cli.chat import chat
from bot.conversations import Conversations
from bot.engine import Concierge
from bot.store import Store


@dataclass(frozen=True)
class ChatDoor:
    """What the CLI's App gives `chat`."""

    concierge: Concierge
    store: Store
    identity: Identity
    conversations: Conversations


def chat_with(
    concierge: Concierge,
    store: Store,
    identity: Identity,
    lines: str,
    *args: str,
    conversations: Conversations | None = None,
) -> Result:
    """`concierge chat ARGS` with `lines` typed in; it must exit 0 (a refusal is an error line)."""
    door = ChatDoor(concierge, store, identity, conversations or Conversations(concierge, store))
    result = CliRunner().invoke(chat, list(args), input=lines, obj=door)
    assert result.exit_code == 0, result.output
    return result
