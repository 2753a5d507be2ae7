"""Slack's rendering of a confirmation (bot/confirmation.py): an order the assistant read is shown,
not carried out, with a "Cancel job 1001" button and a "Keep it" button.

The buttons carry only the id of the stored confirmation, so a click works on any replica and after
a restart; only the person who was asked may answer (Slack's verified user id of the click against
the stored requester), and only once (a second click, a Slack retry or another replica is told it
was answered). The cancel itself is the engine's, as the person who clicked: the backend still
refuses a job that is not theirs. The answer replaces the confirmation: through the click's
`response_url` when it was ephemeral (a `/gpu` reply), through `chat.update` in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App, Respond
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from backends.errors import ConciergeError, PermissionDenied
from backends.types import Identity
from bot.confirmation import CONFIRMED, KEPT, ConfirmFirst, PendingConfirmations
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.incidents import Reply, replying
from bot.slack.listeners import Background
from bot.slack.submission import DOOR
from bot.store import Store

CONFIRM_ORDER_ACTION = "gpu_confirm_order"
KEEP_JOB_ACTION = "gpu_keep_job"
_BUTTON_TEXT_LIMIT = 75


def confirmation_blocks(request_id: str, confirm: ConfirmFirst) -> list[Block]:
    return [
        blocks.section(f":warning: {blocks.escaped(confirm.explanation)}"),
        ActionsBlock(
            block_id="gpu_confirm_order_actions",
            elements=[
                ButtonElement(
                    text=blocks.fitted(confirm.action, _BUTTON_TEXT_LIMIT),
                    action_id=CONFIRM_ORDER_ACTION,
                    value=request_id,
                    style="danger",
                ),
                ButtonElement(text="Keep it", action_id=KEEP_JOB_ACTION, value=request_id),
            ],
        ),
    ]


class CancelConfirmations:
    def __init__(
        self, concierge: Concierge, store: Store, resolve_identity: Callable[[str], Identity]
    ) -> None:
        self._concierge = concierge
        self._pending = PendingConfirmations(store)
        self._resolve_identity = resolve_identity

    def ask(self, user_id: str, text: str, confirm: ConfirmFirst) -> tuple[str, list[Block]]:
        """Store the confirmation; the notification text and blocks that ask it."""
        request_id = self._pending.ask(user_id, DOOR, text, confirm)
        return f"{confirm.action}?", confirmation_blocks(request_id, confirm)

    def register(self, app: App, background: Background) -> None:
        background.register(app.action(CONFIRM_ORDER_ACTION), self.confirm)
        background.register(app.action(KEEP_JOB_ACTION), self.keep)

    def confirm(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(_ephemeral(respond)):
            user_id, request_id = _clicked(body)
            order = self._pending.take(request_id, user_id)
            try:
                self._concierge.cancel(self._resolve_identity(user_id), order.job)
            except ConciergeError as e:
                outcome = "denied" if isinstance(e, PermissionDenied) else "failed"
                self._pending.settle(request_id, outcome, e.message)
                raise
            self._pending.settle(request_id, CONFIRMED)
            done = f":stop_sign: Cancelled job *{blocks.escaped(order.job)}*."
            _replace(body, respond, client, f"Cancelled job {order.job}", blocks.notice(done))

    def keep(self, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        with replying(_ephemeral(respond)):
            user_id, request_id = _clicked(body)
            order = self._pending.take(request_id, user_id)
            self._pending.settle(request_id, KEPT)
            kept = f"Kept job {order.job}; nothing was cancelled."
            shown = f":white_check_mark: Kept job *{blocks.escaped(order.job)}*; nothing was cancelled."
            _replace(body, respond, client, kept, blocks.notice(shown))


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    """The verified user who clicked, and the confirmation id the button carries."""
    return str(body["user"]["id"]), str(body["actions"][0]["value"])


def _replace(
    body: dict[str, Any], respond: Respond, client: WebClient, text: str, new_blocks: Sequence[Block]
) -> None:
    container = body.get("container") or {}
    shown = blocks.as_dicts(new_blocks)
    if container.get("is_ephemeral", True) or not container.get("message_ts"):
        respond(text=blocks.escaped(text), blocks=shown, replace_original=True)
    else:
        channel, ts = container["channel_id"], container["message_ts"]
        client.chat_update(channel=channel, ts=ts, text=blocks.escaped(text), blocks=shown)


def _ephemeral(respond: Respond) -> Reply:
    def reply(text: str) -> object:
        return respond(text=text, response_type="ephemeral", replace_original=False)

    return reply
