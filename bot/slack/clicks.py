"""Answering a button click, the same way for every button (preview, approval, nudge, confirmation).

Who clicked comes from Slack's verified `user` of the payload, and the button carries only an id.
Errors go to the clicker alone as a new ephemeral message, so the clicked message and its buttons
stay for another try. What was done replaces the buttons, so an old message cannot act twice: a
click on an ephemeral message (a `/gpu` reply) carries no `message` and cannot be `chat.update`d,
so Slack only lets the app replace it through the click's `response_url`; a message in a channel or
DM is edited with `chat.update`, so everyone who sees it sees what was decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.slack import blocks
from bot.slack.incidents import Reply


def clicked(body: dict[str, Any]) -> tuple[str, str]:
    """The verified user who clicked, and the value the button carries."""
    return str(body["user"]["id"]), str(body["actions"][0]["value"])


def ephemeral(respond: Respond) -> Reply:
    """A reply only the clicker sees, leaving the clicked message as it is."""

    def reply(text: str) -> object:
        return respond(text=text, response_type="ephemeral", replace_original=False)

    return reply


def without_buttons(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The clicked message's blocks, its buttons left out."""
    found = (body.get("message") or {}).get("blocks") or []
    return [b for b in found if isinstance(b, dict) and b.get("type") != "actions"]


def replace_buttons(
    body: dict[str, Any],
    respond: Respond,
    client: WebClient,
    text: str,
    notice: Sequence[Block],
    *,
    keep_message: bool = False,
) -> None:
    """Replace the clicked message with `notice` (mrkdwn `text` for notifications); with
    `keep_message`, only its buttons, so what the message said stays above the notice."""
    container = body.get("container") or {}
    shown = (without_buttons(body) if keep_message else []) + blocks.as_dicts(notice)
    if container.get("is_ephemeral", True) or not container.get("message_ts"):
        respond(text=text, blocks=shown, replace_original=True)
    else:
        client.chat_update(
            channel=container["channel_id"], ts=container["message_ts"], text=text, blocks=shown
        )
