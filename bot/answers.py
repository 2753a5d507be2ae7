"""What the engine answers a question verb with (queue, status, why, free, cancel), one type per verb.

`Concierge.answer(identity, question, door)` reads the cluster, records the question and its outcome,
and returns one of these; the CLI's verbs and `ask`, `concierge chat` and Slack only render them, so
the doors cannot drift: `why` is phrased by the model the same way everywhere, and a status carries
only what need to know lets the asker see (bot/need_to_know.py).

A cancel the language model read is not carried out on the reading (bot/confirmation.py): its answer
is `ConfirmCancel`, stored as a request awaiting the person's answer, and `Concierge.confirm` carries
it out (`CancelAnswer`) or drops it (`KeptAnswer`) when they give it, at whichever door asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from backends.types import GpuPool, Intent, IntentKind, JobRef, JobStatus, PendingReason, Target
from bot.confirmation import ConfirmFirst
from bot.job_output import OutputTail
from bot.store import RequestRecord

QUESTIONS = frozenset(
    {IntentKind.QUEUE, IntentKind.STATUS, IntentKind.WHY_PENDING, IntentKind.CAPACITY, IntentKind.CANCEL}
)
ABOUT_A_JOB = frozenset({IntentKind.STATUS, IntentKind.WHY_PENDING, IntentKind.CANCEL})
_VERBS = {IntentKind.WHY_PENDING: "why", IntentKind.CAPACITY: "free"}


@dataclass(frozen=True)
class Question:
    """A question verb and what it is about, however a door heard it."""

    kind: IntentKind
    job: str | None = None
    gpu_type: str | None = None
    mine: bool = False  # the queue: only the asker's jobs
    everything: bool = False  # the queue: also jobs that have just ended
    backend: Target | None = None
    confirm_first: ConfirmFirst | None = None  # a cancel the model read (bot/confirmation.py)

    @classmethod
    def of(cls, intent: Intent, confirm_first: ConfirmFirst | None = None) -> Question:
        return cls(intent.kind, intent.job, intent.request.gpu_type, confirm_first=confirm_first)

    @property
    def verb(self) -> str:
        return _VERBS.get(self.kind, self.kind.value)

    @property
    def words(self) -> str:
        """What is recorded as asked: the question as the CLI's verbs spell it ("why 1234")."""
        said = [self.verb, self.job or "", f"--type {self.gpu_type}" if self.gpu_type else ""]
        said += ["--mine" if self.mine else "", "--all" if self.everything else ""]
        return " ".join(word for word in said if word)


@dataclass(frozen=True)
class QueueAnswer:
    jobs: list[JobStatus]


@dataclass(frozen=True)
class JobReport:
    """The status answer: one job as the cluster sees it now, and as the store remembers it (the
    record as the asker may see it)."""

    ref: JobRef
    status: JobStatus | None
    record: RequestRecord | None
    output: OutputTail | None = None  # an ended job's last output lines, as the asker may see them


@dataclass(frozen=True)
class WhyAnswer:
    job: str
    reasons: list[PendingReason]
    phrased: str | None = None  # the model's words, when one is configured (else the door's template)


@dataclass(frozen=True)
class FreeAnswer:
    pools: list[GpuPool]


@dataclass(frozen=True)
class CancelAnswer:
    job: str


@dataclass(frozen=True)
class KeptAnswer:
    """The person answered No to a `ConfirmCancel`: nothing was cancelled."""

    job: str


@dataclass(frozen=True)
class ConfirmCancel:
    """Not done yet: the door asks the person (`confirm.action`), then calls `Concierge.confirm`."""

    request_id: str
    confirm: ConfirmFirst


Answer = QueueAnswer | JobReport | WhyAnswer | FreeAnswer | CancelAnswer | KeptAnswer | ConfirmCancel
