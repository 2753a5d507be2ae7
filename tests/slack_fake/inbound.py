"""What Slack sends *to* the bot: signed HTTP requests and the bodies of commands and clicks.

Built by hand (not through Bolt) so that a test exercises the bot's own parsing and signature
checking exactly as Slack's servers would: slash commands are form fields, interactive payloads
are one form field `payload=` holding JSON, and every request is signed over the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec
from urllib.parse import urlencode

P = ParamSpec("P")
DEFAULT_TEAM_ID = "T0000FAKE"
DEFAULT_USER_ID = "U0000USER"
DEFAULT_CHANNEL_ID = "C0000CHAN"
DEFAULT_BOT_USER_ID = "U0000BOT"
DEFAULT_BOT_ID = "B0000BOT"
DEFAULT_APP_ID = "A0000FAKE"
# Slack always sends a response_url; this one cannot resolve, so a forgotten override fails loudly.
UNSET_RESPONSE_URL = "https://hooks.slack.invalid/commands/unset"


def signed_request(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack puts on a request: v0 HMAC-SHA256 of `v0:{ts}:{body}`, plus its content type."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    content_type = (
        "application/json" if body.lstrip().startswith("{") else "application/x-www-form-urlencoded"
    )
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def _trigger_id() -> str:
    return f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:32]}"


def slash_command_fields(
    text: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    command: str = "/gpu",
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    channel_id: str = DEFAULT_CHANNEL_ID,
    team_id: str = DEFAULT_TEAM_ID,
    user_name: str = "someone",
) -> dict[str, str]:
    """The fields of a slash command (HTTP: form-encoded; Socket Mode: the envelope's payload)."""
    return {
        "token": "verification-token-unused",
        "team_id": team_id,
        "team_domain": "fake",
        "channel_id": channel_id,
        "channel_name": "gpu",
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": DEFAULT_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or _trigger_id(),
    }


def _form_encoded(build: Callable[P, dict[str, str]]) -> Callable[P, str]:
    """The HTTP body of what `build` makes: its fields form-encoded, as Slack posts a slash command."""
    return lambda *args, **kwargs: urlencode(build(*args, **kwargs))


def _payload_form(build: Callable[P, dict[str, Any]]) -> Callable[P, str]:
    """The HTTP body of an interactive payload: `payload=<JSON>`, form-encoded."""
    return lambda *args, **kwargs: urlencode({"payload": json.dumps(build(*args, **kwargs))})


slash_command_body = _form_encoded(slash_command_fields)


def block_action_payload(
    action_id: str,
    value: str,
    user_id: str = DEFAULT_USER_ID,
    *,
    message_ts: str = "1700000000.000100",
    channel: str = DEFAULT_CHANNEL_ID,
    block_id: str = "actions",
    response_url: str = UNSET_RESPONSE_URL,
    trigger_id: str | None = None,
    team_id: str = DEFAULT_TEAM_ID,
    message_blocks: list[dict[str, Any]] | None = None,
    is_ephemeral: bool = False,
) -> dict[str, Any]:
    """A button click's `block_actions` payload (a dict; Socket Mode sends it as is).

    A click on an ephemeral message carries no `message` and cannot be chat.update'd: Slack only
    lets the app replace it through `response_url`. `is_ephemeral=True` reproduces that.
    """
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": "someone", "name": "someone", "team_id": team_id},
        "api_app_id": DEFAULT_APP_ID,
        "token": "verification-token-unused",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": "fake"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "gpu"},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": action_id, "emoji": True},
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if not is_ephemeral:
        payload["message"] = {
            "type": "message",
            "user": DEFAULT_BOT_USER_ID,
            "bot_id": DEFAULT_BOT_ID,
            "ts": message_ts,
            "text": "",
            "blocks": message_blocks or [],
        }
    return payload


block_action_body = _payload_form(block_action_payload)


def socket_mode_envelope(kind: str, payload: dict[str, Any], retry_attempt: int = 0) -> dict[str, Any]:
    """A Socket Mode envelope: kind is "slash_commands", "interactive" or "events_api"."""
    return {
        "envelope_id": str(uuid.uuid4()),
        "type": kind,
        "payload": payload,
        "accepts_response_payload": kind != "events_api",
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
    }


def message_event(
    text: str,
    *,
    user_id: str = DEFAULT_USER_ID,
    channel: str = "D0000DM",
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: str = "im",
    kind: str = "message",
    bot_id: str | None = None,
    subtype: str | None = None,
) -> dict[str, Any]:
    """A `message` (DM: channel_type "im") or, with kind="app_mention", a mention event."""
    event: dict[str, Any] = {
        "type": kind,
        "user": user_id,
        "text": text,
        "ts": ts or f"{time.time():.6f}",
        "channel": channel,
        "event_ts": ts or f"{time.time():.6f}",
    }
    if kind == "message":
        event["channel_type"] = channel_type
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    if bot_id is not None:
        event["bot_id"] = bot_id
    if subtype is not None:
        event["subtype"] = subtype
    return event


def app_home_opened_event(user_id: str = DEFAULT_USER_ID, tab: str = "home") -> dict[str, Any]:
    return {
        "type": "app_home_opened",
        "user": user_id,
        "channel": "D0000DM",
        "tab": tab,
        "event_ts": f"{time.time():.6f}",
    }


def event_callback_body(
    event: dict[str, Any], *, event_id: str | None = None, team_id: str = DEFAULT_TEAM_ID
) -> str:
    """An Events API delivery's HTTP body (JSON), as Slack posts it; the same event_id on a retry."""
    return json.dumps(
        {
            "token": "verification-token-unused",
            "team_id": team_id,
            "api_app_id": DEFAULT_APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "team_id": team_id,
                    "user_id": DEFAULT_BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
    )


def view_submission_payload(
    callback_id: str,
    values: dict[str, dict[str, dict[str, Any]]],
    user_id: str = DEFAULT_USER_ID,
    *,
    private_metadata: str = "",
    view_id: str = "V0000VIEW",
    team_id: str = DEFAULT_TEAM_ID,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A modal's `view_submission` payload; `values` is `view.state.values` as Slack sends it:
    block_id → action_id → {"type": "plain_text_input", "value": …} (or "selected_option")."""
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "fake"},
        "user": {"id": user_id, "username": "someone", "name": "someone", "team_id": team_id},
        "api_app_id": DEFAULT_APP_ID,
        "token": "verification-token-unused",
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": [],
            "state": {"values": values},
            "hash": f"{time.time():.6f}.fake",
            "app_id": DEFAULT_APP_ID,
            "bot_id": DEFAULT_BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


view_submission_body = _payload_form(view_submission_payload)
