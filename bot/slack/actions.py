"""The preview's buttons: Submit runs the request once, Cancel records it as declined.

The result replaces the preview: through the click's `response_url` when the preview is ephemeral
(the default; `chat.update` cannot edit an ephemeral message), through `chat.update` when the
person shared it in the channel. Errors go to the person as a new ephemeral message, so the
preview and its buttons stay for another try.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.commands import ResolveIdentity
from bot.slack.incidents import Reply, replying
from bot.slack.submission import decline, submit_once
from bot.store import Store


class PreviewButtons:
    def __init__(self, concierge: Concierge, store: Store, resolve_identity: ResolveIdentity) -> None:
        self._concierge = concierge
        self._store = store
        self._resolve_identity = resolve_identity

    def submit(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(_ephemeral(respond)):
            user_id, request_id = _clicked(body)
            outcome = submit_once(self._concierge, self._store, self._resolve_identity(user_id), request_id)
            if outcome.job_id is None:
                _ephemeral(respond)(f":hourglass: Request {request_id[:8]} is being submitted already.")
                return
            text = f"Submitted job {outcome.job_id}"
            _replace_preview(body, respond, client, text, blocks.submitted(outcome.plan, outcome.job_id))

    def cancel(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(_ephemeral(respond)):
            user_id, request_id = _clicked(body)
            decline(self._concierge, self._store, self._resolve_identity(user_id), request_id)
            text = f"Request {request_id[:8]} was not submitted."
            _replace_preview(body, respond, client, text, blocks.notice(f":heavy_multiplication_x: {text}"))


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    """The verified user who clicked, and the request id the button carries."""
    return str(body["user"]["id"]), str(body["actions"][0]["value"])


def _replace_preview(
    body: dict[str, Any], respond: Respond, client: WebClient, text: str, new_blocks: Sequence[Block]
) -> None:
    container = body.get("container") or {}
    shown = blocks.as_dicts(new_blocks)
    if container.get("is_ephemeral", True) or not container.get("message_ts"):
        respond(text=text, blocks=shown, replace_original=True)
    else:
        channel, ts = container["channel_id"], container["message_ts"]
        client.chat_update(channel=channel, ts=ts, text=text, blocks=shown)


def _ephemeral(respond: Respond) -> Reply:
    def reply(text: str) -> object:
        return respond(text=text, response_type="ephemeral", replace_original=False)

    return reply
