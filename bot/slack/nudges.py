"""Idle-GPU nudges in Slack: a DM to the job's owner with **Keep** and **Cancel job** buttons.

Who gets the DM: the person who asked for the job through the concierge when that was on Slack,
else the Slack person mapped to the job's cluster user (`concierge users map`, or the email rule
of bot/slack/identity.py). Nobody found means the nudge is not delivered, and not counted.

The buttons carry only "backend:job id"; the job's owner is read back from the nudge's row, so
any replica can answer a click. Every click is checked against the signed payload's user: the
clicker's cluster user (Unix user on Slurm, Kubernetes user on k8s) must be the job's owner.
Cancel job then cancels through `Concierge.cancel` as that person (never as the bot), so the
backend's own ownership check applies as well, and the audit names the person. The result
replaces the buttons through `chat.update`, so the same job is not cancelled twice by a second
click on an old message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
)

from backends.durations_text import duration
from backends.errors import PermissionDenied, RequestInvalid
from backends.types import Identity, IntentKind, Target
from bot.answers import Question
from bot.engine import Concierge
from bot.settings import NudgeSettings
from bot.slack import blocks
from bot.slack.clicks import clicked, ephemeral, replace_buttons
from bot.slack.commands import ResolveIdentity
from bot.slack.incidents import replying
from bot.slack.listeners import Background
from bot.slack.submission import DOOR
from bot.store import Store
from bot.store.schedule import NudgeRecord, ScheduleStore
from bot.store.store import utc_now
from bot.telemetry.nudges import Nudge, Nudger, NudgeUndeliverable

KEEP_ACTION = "gpu_nudge_keep"
CANCEL_JOB_ACTION = "gpu_nudge_cancel"
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
Clock = Callable[[], datetime]


def slack_nudger(store: Store, client: WebClient, settings: NudgeSettings, clock: Clock = utc_now) -> Nudger:
    """The nudger the schedule runs in `concierge serve`: DMs through this client."""
    schedule_store = store.schedule()
    return Nudger(schedule_store, settings, SlackNudgeDelivery(schedule_store, client), clock)


class SlackNudgeDelivery:
    def __init__(self, store: ScheduleStore, client: WebClient) -> None:
        self._store = store
        self._client = client

    def deliver(self, nudge: Nudge) -> None:
        user = self.slack_user(nudge)
        if user is None:
            raise NudgeUndeliverable(
                f"nobody on Slack is mapped to the cluster user {nudge.owner}; an admin can map them with "
                f"`concierge users map SLACK_USER_ID --unix {nudge.owner}`"
            )
        dm = self._client.conversations_open(users=user)
        self._client.chat_postMessage(
            channel=str(dm["channel"]["id"]),
            text=f"Job {blocks.escaped(nudge.job_id)} holds {nudge.gpus} GPU(s) it has hardly used",
            blocks=blocks.as_dicts(nudge_message(nudge)),
        )

    def slack_user(self, nudge: Nudge) -> str | None:
        requester = self._store.requester_of_job(nudge.backend, nudge.job_id)
        if requester is not None and _SLACK_USER.match(requester):
            return requester
        mapped = self._store.requesters_mapped_to(nudge.backend, nudge.owner)
        return next((person for person in mapped if _SLACK_USER.match(person)), None)


def nudge_message(nudge: Nudge) -> list[Block]:
    job = blocks.escaped(nudge.job_id)
    idle = duration(seconds=nudge.idle_for.total_seconds())
    keep = duration(seconds=nudge.keep_for.total_seconds())
    runs_as = blocks.escaped(nudge.owner)
    value = f"{nudge.backend}:{nudge.job_id}"
    return [
        blocks.section(
            f":zzz: Your job *{job}* ({blocks.escaped(nudge.backend)}) holds *{nudge.gpus} GPU(s)* and used "
            f"*{nudge.mean_utilization_pct:.1f} %* of them on average over the last *{idle}*.\n"
            "If it no longer needs them, cancel it so that others can use them."
        ),
        blocks.context(
            f"*Keep*: no reminder about this job for {keep}. *Cancel job*: cancels it as you (`{runs_as}`)."
        ),
        ActionsBlock(
            block_id="gpu_nudge_actions",
            elements=[
                ButtonElement(text="Keep", action_id=KEEP_ACTION, value=value, style="primary"),
                ButtonElement(
                    text="Cancel job",
                    action_id=CANCEL_JOB_ACTION,
                    value=value,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Cancel this job?",
                        text=f"Job {job} will be cancelled as `{runs_as}`; its GPUs go back to the queue.",
                        confirm="Cancel job",
                        deny="Keep it running",
                    ),
                ),
            ],
        ),
    ]


class NudgeButtons:
    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        resolve_identity: ResolveIdentity,
        settings: NudgeSettings,
        clock: Clock = utc_now,
    ) -> None:
        self._concierge = concierge
        self._nudges = store.schedule()
        self._resolve_identity = resolve_identity
        self._settings = settings
        self._clock = clock

    def keep(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            owner, record = self._owner_clicked(body)
            now = self._clock()
            until = now + self._settings.cooldown
            self._nudges.keep(record.backend, record.job_id, record.owner, until, now, by=owner.requester)
            job = blocks.escaped(record.job_id)
            done = f":pushpin: Kept job *{job}*: no reminder before {_slack_date(until)}."
            replace_buttons(body, respond, client, done, blocks.notice(done), keep_message=True)

    def cancel(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            owner, record = self._owner_clicked(body)
            backend: Target = "k8s" if record.backend == "k8s" else "slurm"
            self._concierge.answer(owner, Question(IntentKind.CANCEL, record.job_id, backend=backend), DOOR)
            job, runs_as = blocks.escaped(record.job_id), blocks.escaped(record.owner)
            done = f":stop_sign: Cancelled job *{job}* as `{runs_as}`."
            replace_buttons(body, respond, client, done, blocks.notice(done), keep_message=True)

    def _owner_clicked(self, body: dict[str, Any]) -> tuple[Identity, NudgeRecord]:
        """The clicker's identity and the nudged job, when the clicker owns that job."""
        user_id, value = clicked(body)
        backend, _, job_id = value.partition(":")
        record = self._nudges.nudge_record(backend, job_id)
        if record is None:
            raise RequestInvalid(f"no reminder about job {job_id} is known here any more; nothing was done")
        identity = self._resolve_identity(user_id)
        cluster_user = identity.k8s_user if record.backend == "k8s" else identity.unix_user
        if cluster_user != record.owner:
            raise PermissionDenied(
                f"job {record.job_id} runs as {record.owner}; only its owner can keep or cancel it from here"
            )
        return identity, record


def register_nudges(
    app: App,
    concierge: Concierge,
    store: Store,
    resolve_identity: ResolveIdentity,
    background: Background,
    settings: NudgeSettings,
) -> NudgeButtons:
    """Keep / Cancel job on a nudge: acknowledged at once, answered in the background."""
    buttons = NudgeButtons(concierge, store, resolve_identity, settings)
    background.register(app.action(KEEP_ACTION), buttons.keep)
    background.register(app.action(CANCEL_JOB_ACTION), buttons.cancel)
    return buttons


def _slack_date(when: datetime) -> str:
    """A time each reader sees in their own time zone (Slack's date formatting), UTC as fallback."""
    fallback = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} at {{time}}|{fallback}>"
