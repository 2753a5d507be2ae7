"""Turn a failure into a short reply: the message of an expected error, an incident id otherwise.

Listeners run on Bolt's worker threads after `ack()`; an exception there would only reach Bolt's
log, and the person would wait forever. So every piece of slow work runs inside `replying`, which
answers the person whatever happens and keeps the process alive. A `Reply` takes mrkdwn the bot
wrote; an error's message is escaped here (bot/slack/blocks.py: one way out).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_sdk import WebClient

from backends.errors import ConciergeError
from bot.slack.blocks import escaped

log = logging.getLogger("concierge.slack")
Reply = Callable[[str], object]


def dm_reply(client: WebClient, user_id: str) -> Reply:
    """Answers in the person's DM with the app: for work that has no response_url (modals)."""

    def reply(text: str) -> object:
        return client.chat_postMessage(channel=user_id, text=text)

    return reply


def incident_message(incident: str) -> str:
    return (
        f":boom: Something unexpected went wrong (incident `{incident}`). "
        "It is logged; please tell an admin the incident id."
    )


@contextmanager
def replying(reply: Reply) -> Iterator[None]:
    try:
        yield
    except ConciergeError as e:
        # The message quotes what the person, the model or the cluster said: escaped, like any of it.
        _quietly(reply, f":warning: {escaped(e.message)}")
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("incident %s", incident)
        _quietly(reply, incident_message(incident))


def _quietly(reply: Reply, text: str) -> None:
    """Telling the person may fail too (Slack down, response_url expired): log it, never raise."""
    try:
        reply(text)
    except Exception:
        log.exception("could not tell the person: %s", text)
