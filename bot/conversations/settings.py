"""How much of a conversation is kept: the texts the language model reads back, and their size.

A Slack thread can run for days; only the last messages matter to a follow-up, and each one is
sent to the model with every later message, so both the count and the length are bounded.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field


class ConversationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_texts: int = Field(default=20, ge=1, le=200)  # the person's last messages kept per conversation
    max_text_chars: int = Field(default=2000, ge=100, le=20_000)  # each kept message is cut to this
    # A conversation nobody spoke in for this long is deleted by the schedule's housekeeping (its
    # requests and their outcomes stay in the store): a follow-up after that starts afresh.
    keep_days: float = Field(default=30.0, gt=0)

    @property
    def keep_for(self) -> timedelta:
        return timedelta(days=self.keep_days)
