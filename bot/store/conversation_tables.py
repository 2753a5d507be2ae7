"""Conversations: where each Slack thread or CLI chat session stands, kept in the store.

Why the shape:
- The key is (door, place, requester): a Slack thread is "slack", "<channel>/<thread ts>" and the
  person; a CLI session is "cli", the session's name and the person. It is the primary key, so two
  replicas answering the first messages of one thread at once insert one row, not two: the
  conversation cannot fork.
- `turn` counts the saved answers. Saving is a compare-and-set on it (UPDATE … WHERE turn = the
  one read), so when two replicas answer two messages of one thread at the same moment, exactly
  one save wins and the other is told, instead of one silently overwriting the other's draft.
- `partial` holds the request gathered so far while a clarifying question (`pending_field`) waits
  for its answer: it has not been planned yet, so it has no request row of its own to point at.
- `texts` keeps the person's last messages (bounded by the caller): the language model reads them,
  and checks its values against them, when it reads a follow-up.
- `draft_request_id` loses its request only with the request (SET NULL), never the other way.

The records the store hands back for this feature live here too, next to the row they mirror.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.store.tables import Base


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_updated_at", "updated_at"),)

    door: Mapped[str] = mapped_column(String(32), primary_key=True)
    place: Mapped[str] = mapped_column(String(255), primary_key=True)
    requester: Mapped[str] = mapped_column(String(255), primary_key=True)
    draft_request_id: Mapped[str | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), index=True
    )
    partial: Mapped[dict[str, Any] | None]
    pending_field: Mapped[str | None] = mapped_column(String(64))
    texts: Mapped[list[str]]
    turn: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ConversationKey(BaseModel):
    """One conversation: a door, a place at that door (thread, session) and the person in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    door: str = Field(min_length=1, max_length=32)
    place: str = Field(min_length=1, max_length=255)
    requester: str = Field(min_length=1, max_length=255)


class ConversationState(BaseModel):
    """Where a conversation stands; `turn` 0 means nothing was saved for it yet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: ConversationKey
    draft_request_id: str | None = None
    partial: dict[str, Any] | None = None
    pending_field: str | None = None
    texts: tuple[str, ...] = ()
    turn: int = 0
    updated_at: datetime | None = None
