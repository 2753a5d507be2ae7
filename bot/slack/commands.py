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

from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Identity, IntentKind
from bot.cli import render
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.confirmations import CancelConfirmations
from bot.slack.submission import DOOR

# Resolves a Slack user id to the person's cluster identity (raises when they are not mapped).
ResolveIdentity = Callable[[str], Identity]

HELP = (
    "*GPU Concierge* — ask for GPUs in plain words, or:\n"
    "• `/gpu 2 a100 for 4 hours to run python train.py` — preview, then Submit\n"
    "• `/gpu queue` (`/gpu queue mine`) — the queue\n"
    "• `/gpu why 1234` — why a job waits, and what would start sooner\n"
    "• `/gpu status 1234` — one job and its recorded history\n"
    "• `/gpu free [a100]` — free GPUs by partition and type\n"
    "• `/gpu cancel 1234` — cancel your job\n"
    "• `/gpu new` — a form to fill in instead of a sentence\n"
    "Replies are visible only to you."
)
_NEEDS_JOB = {"why": IntentKind.WHY_PENDING, "status": IntentKind.STATUS, "cancel": IntentKind.CANCEL}


@dataclass(frozen=True)
class Answer:
    """`text` is given as plain words (it may quote the person, the model or the cluster) and kept
    escaped: Slack reads a message's top-level text as mrkdwn, in notifications too."""

    text: str  # the notification text, and what clients without blocks show
    blocks: list[Block] = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", blocks.escaped(self.text))


class GpuCommand:
    def __init__(
        self, concierge: Concierge, resolve_identity: ResolveIdentity, confirmations: CancelConfirmations
    ) -> None:
        self._concierge = concierge
        self._resolve_identity = resolve_identity
        self._confirmations = confirmations

    def answer(self, user_id: str, text: str) -> Answer:
        words = text.split()
        verb = words[0].lower() if words else "help"
        if verb == "help":
            return Answer("GPU Concierge help", blocks.notice(HELP))
        if verb == "queue":
            return self._queue(user_id, mine=len(words) > 1 and words[1].lower() == "mine")
        if verb == "free":
            return self._free(user_id, words[1] if len(words) > 1 else None)
        if verb in _NEEDS_JOB:
            if len(words) != 2:
                raise RequestInvalid(f"which job? e.g. `/gpu {verb} 1234`")
            return self._about_job(user_id, _NEEDS_JOB[verb], words[1])
        return self._free_text(user_id, text.strip())

    def _free_text(self, user_id: str, text: str) -> Answer:
        reading = self._concierge.read(text)  # read once: the model (if any) is asked once
        intent = reading.intent
        if reading.confirm_first is not None:  # an order the model read: shown, not carried out
            return Answer(*self._confirmations.ask(user_id, text, reading.confirm_first))
        if intent.kind == IntentKind.HELP:
            return Answer("GPU Concierge help", blocks.notice(HELP))
        if intent.kind == IntentKind.QUEUE:
            return self._queue(user_id, mine=False)
        if intent.kind == IntentKind.CAPACITY:
            return self._free(user_id, intent.request.gpu_type)
        if intent.kind in (IntentKind.STATUS, IntentKind.WHY_PENDING, IntentKind.CANCEL):
            if not intent.job:
                verb = intent.kind.value.replace("_pending", "")
                raise RequestInvalid(f"which job? e.g. `/gpu {verb} 1234`")
            return self._about_job(user_id, intent.kind, intent.job)
        prepared = self._concierge.prepare(self._resolve_identity(user_id), text, DOOR, reading=reading)
        return Answer(f"Preview of request {prepared.request_id[:8]}", blocks.preview(prepared))

    def _queue(self, user_id: str, *, mine: bool) -> Answer:
        identity = self._resolve_identity(user_id) if mine else self._asker(user_id)
        with self._concierge.recorded(identity, DOOR, "queue mine" if mine else "queue"):
            jobs = [j for j in self._concierge.queue(identity, mine=mine) if not j.state.is_final]
        return Answer(f"{len(jobs)} jobs in the queue", [blocks.code(render.queue(jobs), "Queue")])

    def _free(self, user_id: str, gpu_type: str | None) -> Answer:
        words = "free" + (f" {gpu_type}" if gpu_type else "")
        with self._concierge.recorded(self._asker(user_id), DOOR, words):
            pools = self._concierge.capacity(gpu_type=gpu_type)
        return Answer("Free GPUs", [blocks.code(render.pools(pools), "Free GPUs")])

    def _about_job(self, user_id: str, kind: IntentKind, job: str) -> Answer:
        if kind == IntentKind.CANCEL:
            identity = self._resolve_identity(user_id)
            with self._concierge.recorded(identity, DOOR, f"cancel {job}"):
                self._concierge.cancel(identity, job)
            done = f":stop_sign: Cancelled job *{blocks.escaped(job)}*."
            return Answer(f"Cancelled job {job}", blocks.notice(done))
        asker = self._asker(user_id)
        if kind == IntentKind.STATUS:
            with self._concierge.recorded(asker, DOOR, f"status {job}"):
                report = self._concierge.status(asker, job)
            return Answer(f"Job {job}", [blocks.code(render.job_report(report))])
        with self._concierge.recorded(asker, DOOR, f"why {job}"):
            reasons = self._concierge.why(job)
        phrased = self._concierge.why_in_words(job, reasons)
        if phrased is not None:  # the model's prose reads better outside a code block
            return Answer(f"Why job {job} waits", blocks.notice(blocks.escaped(phrased)))
        return Answer(f"Why job {job} waits", [blocks.code(render.reasons(job, reasons))])

    def _asker(self, user_id: str) -> Identity:
        """Read-only questions need no cluster user: an unmapped person may still see the queue."""
        try:
            return self._resolve_identity(user_id)
        except PermissionDenied:
            return Identity(requester=user_id)
