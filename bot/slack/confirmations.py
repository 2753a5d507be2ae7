"""Slack's rendering of a confirmation (bot/confirmation.py): an order the assistant read is shown,
not carried out, with a "Cancel job 1001" button and a "Keep it" button.

The buttons carry only the id of the stored confirmation, so a click works on any replica and after
a restart; the engine (`Concierge.confirm`) lets only the person who was asked answer it (Slack's
verified user id of the click against the stored requester), and only once (a second click, a Slack
retry or another replica is told it was answered). The cancel itself is the engine's, as the person
who clicked: the backend still refuses a job that is not theirs. The clicks are answered in
bot/slack/actions.py, like the preview's.
"""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.confirmation import ConfirmFirst
from bot.slack import blocks

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
