"""`/gpu …`: what each subcommand answers, as Block Kit, without knowing how Slack delivers it.

Subcommands are matched on the first word (help, queue, why, status, free, cancel); anything else
is the person's own words and goes through the engine's understanding, as the CLI's `ask` does: a
question ("why is 12 pending") is answered, a request is prepared and shown as a preview with
Submit/Cancel buttons, and a cancel the language model read is only shown, with a button to confirm
it (bot/confirmation.py, bot/slack/confirmations.py); `/gpu cancel 1234` needs none. Tables reuse
the CLI's plain-text rendering inside a code block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slack_sdk.models.blocks import Block

from backends.errors import PermissionDenied
from backends.types import Identity, IntentKind
from bot import answers as engine_answers
from bot import text_render as render
from bot.answers import (
    QUESTIONS,
    CancelAnswer,
    ConfirmCancel,
    FreeAnswer,
    JobReport,
    KeptAnswer,
    Question,
    QueueAnswer,
    WhyAnswer,
)
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.confirmations import confirmation_blocks
from bot.slack.submission import DOOR
from bot.understanding.vocabulary import QUESTION_SUBCOMMANDS

# Resolves a Slack user id to the person's cluster identity (raises when they are not mapped).
ResolveIdentity = Callable[[str], Identity]

HELP = (
    "*GPU Concierge* — ask for GPUs in plain words, or:\n"
    "• `/gpu 2 a100 for 4 hours to run python3 train.py` — preview, then Submit\n"
    "• `/gpu queue` (`/gpu queue mine`) — the queue\n"
    "• `/gpu why 1234` — why a job waits, and what would start sooner\n"
    "• `/gpu status 1234` — one job and its recorded history\n"
    "• `/gpu free [a100]` — free GPUs by partition and type\n"
    "• `/gpu cancel 1234` — cancel your job\n"
    "• `/gpu new` — a form to fill in instead of a sentence\n"
    "Replies are visible only to you."
)


@dataclass(frozen=True)
class Answer:
    """`text` is given as plain words (it may quote the person, the model or the cluster) and kept
    escaped: Slack reads a message's top-level text as mrkdwn, in notifications too."""

    text: str  # the notification text, and what clients without blocks show
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", blocks.escaped(self.text))


class GpuCommand:
    def __init__(self, concierge: Concierge, resolve_identity: ResolveIdentity) -> None:
        self._concierge = concierge
        self._resolve_identity = resolve_identity

    def answer(self, user_id: str, text: str) -> Answer:
        words = text.split()
        verb = words[0].lower() if words else "help"
        if verb == "help":
            return Answer("GPU Concierge help", blocks.notice(HELP))
        if verb in QUESTION_SUBCOMMANDS:
            return self.answered(user_id, _typed(QUESTION_SUBCOMMANDS[verb], words[1:]))
        reading = self._concierge.read(text)  # read once: the model (if any) is asked once
        if reading.intent.kind == IntentKind.HELP:
            return Answer("GPU Concierge help", blocks.notice(HELP))
        if reading.intent.kind in QUESTIONS:
            return self.answered(user_id, reading.question)
        prepared = self._concierge.prepare(self._resolve_identity(user_id), text, DOOR, reading=reading)
        return Answer(f"Preview of request {prepared.request_id[:8]}", blocks.preview(prepared))

    def answered(self, user_id: str, question: Question) -> Answer:
        """The engine's answer, in Block Kit. Read-only questions need no cluster user (an unmapped
        person may still see the queue); a cancel and the person's own queue do."""
        needs_account = question.kind == IntentKind.CANCEL or question.mine
        identity = self._resolve_identity(user_id) if needs_account else self._asker(user_id)
        return shown(self._concierge.answer(identity, question, DOOR))

    def _asker(self, user_id: str) -> Identity:
        try:
            return self._resolve_identity(user_id)
        except PermissionDenied:
            return Identity(requester=user_id)


def _typed(kind: IntentKind, args: list[str]) -> Question:
    """`/gpu queue [mine]`, `/gpu free [type]`, `/gpu why|status|cancel <job>`."""
    if kind == IntentKind.QUEUE:
        return Question(kind, mine=[word.lower() for word in args[:1]] == ["mine"])
    if kind == IntentKind.CAPACITY:
        return Question(kind, gpu_type=args[0] if args else None)
    return Question(kind, job=args[0] if len(args) == 1 else None)


def shown(answer: engine_answers.Answer) -> Answer:
    """An engine's answer as Slack shows it: tables in a code block, the model's prose as it is."""
    text = render.answer(answer)
    match answer:
        case QueueAnswer(jobs=jobs):
            return Answer(f"{len(jobs)} jobs in the queue", [blocks.code(text, "Queue")])
        case FreeAnswer():
            return Answer("Free GPUs", [blocks.code(text, "Free GPUs")])
        case JobReport(ref=ref):
            return Answer(f"Job {ref.job_id}", [blocks.code(text)])
        case WhyAnswer(job=job, phrased=str()):  # the model's prose reads better outside a code block
            return Answer(f"Why job {job} waits", blocks.notice(blocks.escaped(text)))
        case WhyAnswer(job=job):
            return Answer(f"Why job {job} waits", [blocks.code(text)])
        case CancelAnswer(job=job):
            return Answer(
                f"Cancelled job {job}", blocks.notice(f":stop_sign: Cancelled job *{blocks.escaped(job)}*.")
            )
        case KeptAnswer(job=job):
            kept = f":white_check_mark: Kept job *{blocks.escaped(job)}*; nothing was cancelled."
            return Answer(f"Kept job {job}; nothing was cancelled.", blocks.notice(kept))
        case ConfirmCancel(request_id=request_id, confirm=confirm):
            return Answer(f"{confirm.action}?", confirmation_blocks(request_id, confirm))
