"""Builds the Bolt app: the Slack door's one entry point, which only translates to the engine.

Every command and click is acknowledged at once (an `ack` listener that does nothing else), and
the work runs afterwards as a Bolt lazy listener on a thread pool, so Slack's 3-second limit
never depends on the cluster or a language model. `process_before_response=False` lets the HTTP
response (or the Socket Mode envelope) go back as soon as `ack()` is called.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from backends.types import Identity
from bot.conversations import Conversations
from bot.engine import Concierge
from bot.settings import NudgeSettings
from bot.slack import blocks
from bot.slack.actions import PreviewButtons
from bot.slack.approvals import register_approvals
from bot.slack.commands import GpuCommand
from bot.slack.events import register_events
from bot.slack.form import register_form
from bot.slack.identity import email_rule, slack_identity
from bot.slack.incidents import replying
from bot.slack.listeners import Background
from bot.slack.nudges import register_nudges
from bot.slack.settings import SlackSettings
from bot.slack.text_in import person_words
from bot.store import Store

log = logging.getLogger("concierge.slack")
SLASH_COMMAND = "/gpu"


def web_client(settings: SlackSettings) -> WebClient:
    return WebClient(token=settings.bot_token.get_secret_value(), base_url=settings.api_url)


def build_app(
    concierge: Concierge,
    store: Store,
    settings: SlackSettings,
    *,
    client: WebClient | None = None,
    nudges: NudgeSettings | None = None,
    conversations: Conversations | None = None,
) -> App:
    client = client or web_client(settings)
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
        # slack_sdk retries only connection errors by default; this one honours 429 Retry-After.
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    secret = settings.signing_secret.get_secret_value() if settings.signing_secret else None
    app = App(
        client=client,
        signing_secret=secret,
        process_before_response=False,
        # Socket Mode envelopes are not signed; Bolt checks signatures on HTTP requests only.
        request_verification_enabled=settings.mode == "http",
        # Bolt's own pool only runs acks and hand-offs; the work has its own (bot/slack/listeners.py).
        listener_executor=ThreadPoolExecutor(8, thread_name_prefix="slack-ack"),
    )

    identity_rule = email_rule(settings)

    def resolve_identity(user_id: str) -> Identity:
        return slack_identity(store, client, user_id, identity_rule)

    command = GpuCommand(concierge, resolve_identity)
    buttons = PreviewButtons(concierge, store, resolve_identity)

    background = Background(settings.workers)

    def answer_gpu_command(body: dict[str, Any], respond: Respond) -> None:
        def reply(text: str) -> object:
            return respond(text=text, response_type="ephemeral")

        with replying(reply):
            answer = command.answer(str(body["user_id"]), person_words(str(body.get("text") or "")))
            respond(text=answer.text, blocks=blocks.as_dicts(answer.blocks), response_type="ephemeral")

    register_form(app, concierge, store, resolve_identity, background)  # before /gpu: first match wins
    background.register(app.command(SLASH_COMMAND), answer_gpu_command)
    buttons.register(app, background)
    register_events(app, concierge, store, command, resolve_identity, background, conversations)
    register_approvals(app, concierge, store, settings, resolve_identity, background)
    register_nudges(app, concierge, store, resolve_identity, background, nudges or NudgeSettings())
    app.error(_log_unhandled)
    return app


def _log_unhandled(error: Exception) -> None:
    # Only Bolt's own failures land here: our listeners answer every error inside `replying`.
    log.error("unhandled error in the Slack app", exc_info=error)
