"""What a conversation answered a message with; each door shows these in its own way.

Slack shows a preview with buttons, the CLI prints the plan and asks y/N: the conversation only
decides which of these it is, so both doors behave the same and neither knows the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.errors import BackendUnavailable
from backends.types import Intent
from bot.answers import Question
from bot.confirmation import ConfirmFirst
from bot.engine import Prepared


@dataclass(frozen=True)
class Previewed:
    """A new or changed request was planned; nothing runs until the person confirms it."""

    prepared: Prepared
    summary: str
    superseded: str | None = None  # the draft this one replaces (its Submit no longer works)


@dataclass(frozen=True)
class Confirming:
    """ "submit it": the draft again, with its summary, waiting for an explicit confirmation."""

    prepared: Prepared
    summary: str


@dataclass(frozen=True)
class AlreadySubmitted:
    request_id: str
    job_id: str


@dataclass(frozen=True)
class Asked:
    """One clarifying question; the person's next message is read as its answer."""

    field: str
    question: str


@dataclass(frozen=True)
class Dropped:
    """The draft (or the request being gathered) was dropped; nothing was submitted."""

    request_id: str | None  # the previewed draft that was declined; None when none was open


@dataclass(frozen=True)
class Aside:
    """Not about the draft (a question about jobs or the cluster, help): the door answers it as it
    answers any such question, and the draft stays as it was; after the person confirms it, when
    `confirm_first` says so (bot/confirmation.py)."""

    intent: Intent
    confirm_first: ConfirmFirst | None = None

    @property
    def question(self) -> Question:
        return Question.of(self.intent, self.confirm_first)


Turn = Previewed | Confirming | AlreadySubmitted | Asked | Dropped | Aside


class MessagesCrossed(BackendUnavailable):
    """Two messages of one conversation were answered at the same moment (two replicas)."""

    def __init__(self) -> None:
        super().__init__(
            "another message in this conversation was being answered at the same moment, so this one "
            "changed nothing; look at the latest answer, and say this again if it still applies",
            retry_after=1.0,
        )
