"""The preview's buttons: Submit runs the request once, Cancel records it as declined; and a
confirmation's (bot/slack/confirmations.py): "Cancel job N" or "Keep it", answered by the engine.

Where to post the job's updates (its thread) is remembered by Submit's work, after the ack: nothing
touches the database before Slack's ack (bot/slack/job_updates.py).

The result replaces the preview (or the confirmation) as every click's does (bot/slack/clicks.py);
errors go to the clicker alone, so the message and its buttons stay for another try.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from backends.types import Identity
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.clicks import clicked, ephemeral, replace_buttons
from bot.slack.commands import ResolveIdentity, shown
from bot.slack.confirmations import CONFIRM_ORDER_ACTION, KEEP_JOB_ACTION
from bot.slack.incidents import replying
from bot.slack.job_updates import remember_clicked_message
from bot.slack.listeners import Background
from bot.slack.submission import decline, submit_once
from bot.store import Store


class PreviewButtons:
    def __init__(self, concierge: Concierge, store: Store, resolve_identity: ResolveIdentity) -> None:
        self._concierge = concierge
        self._store = store
        self._resolve_identity = resolve_identity

    def register(self, app: App, background: Background) -> None:
        background.register(app.action(blocks.SUBMIT_ACTION), self.submit)
        background.register(app.action(blocks.CANCEL_ACTION), self.cancel)
        background.register(app.action(CONFIRM_ORDER_ACTION), self.confirm_order)
        background.register(app.action(KEEP_JOB_ACTION), self.keep_job)

    def submit(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            user_id, request_id = clicked(body)
            outcome = submit_once(self._concierge, self._store, self._resolve_identity(user_id), request_id)
            remember_clicked_message(self._store, body, request_id)
            if outcome.job_id is None:
                ephemeral(respond)(f":hourglass: Request {request_id[:8]} is being submitted already.")
                return
            text = f"Submitted job {outcome.job_id}"
            replace_buttons(body, respond, client, text, blocks.submitted(outcome.plan, outcome.job_id))

    def cancel(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(ephemeral(respond)):
            user_id, request_id = clicked(body)
            decline(self._concierge, self._store, self._resolve_identity(user_id), request_id)
            text = f"Request {request_id[:8]} was not submitted."
            replace_buttons(body, respond, client, text, blocks.notice(f":heavy_multiplication_x: {text}"))

    def confirm_order(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        self._confirmation_answered(body, respond, client, confirmed=True)

    def keep_job(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        self._confirmation_answered(body, respond, client, confirmed=False)

    def _confirmation_answered(
        self, body: dict[str, Any], respond: Respond, client: WebClient, *, confirmed: bool
    ) -> None:
        with replying(ephemeral(respond)):
            user_id, request_id = clicked(body)
            # Keeping a job needs no cluster user; cancelling it is done as the person who clicked.
            identity = self._resolve_identity(user_id) if confirmed else Identity(requester=user_id)
            answer = shown(self._concierge.confirm(identity, request_id, confirmed=confirmed))
            replace_buttons(body, respond, client, answer.text, answer.blocks)
