"""DMs and @mentions as conversations: the same answers as `/gpu`, in the message's thread.

A message is answered in its thread (the message's `thread_ts`, or its own `ts` when it starts one).
Each thread is a conversation (bot/conversations) keyed by channel, thread and person, kept in the
store: the thread's draft, a pending clarifying question and the person's last messages survive a
restart and are seen by every replica. Follow-ups ("make it 4 GPUs", "use H100 instead", "for 3
hours") change the draft and show a new preview; the old one is settled `superseded`, so its
Submit button no longer works. "submit it" shows the draft's summary and preview again: nothing
runs without the Submit button. A request that lacks what it needs gets one question at a time.
Anything that is not about the draft (a question about jobs, help, words nobody understood) gets
exactly what `/gpu <text>` would answer (`GpuCommand.answer`), so the two doors never drift.

Slack delivers an event again when it got no 200 within 3 s (`X-Slack-Retry-Num` over HTTP,
`retry_attempt` in Socket Mode), and two replicas may each get one. Every delivery claims its
`event_id` in the store's claims table (`Store.claim("slack-event:<event_id>")`, one INSERT … ON
CONFLICT DO NOTHING): the delivery whose row is inserted answers, every other one (retry or
replica) answers nothing. A retry whose first delivery never reached us finds no claim
and is answered, which is what a retry is for.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient

from bot.conversations import (
    AlreadySubmitted,
    Aside,
    Asked,
    Confirming,
    ConversationKey,
    Conversations,
    Dropped,
    Previewed,
    Turn,
)
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.commands import Answer, GpuCommand, ResolveIdentity
from bot.slack.incidents import replying
from bot.slack.submission import DOOR
from bot.slack.text_in import spoken_text
from bot.store import Store

log = logging.getLogger("concierge.slack")

DraftKey = tuple[str, str, str]  # channel, thread ts, Slack user id


def conversation_key(key: DraftKey) -> ConversationKey:
    channel, thread_ts, user_id = key
    return ConversationKey(door=DOOR, place=f"{channel}/{thread_ts}", requester=user_id)


class Conversation:
    """Answers one message of a thread, as the thread's conversation stands in the store."""

    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        command: GpuCommand,
        resolve_identity: ResolveIdentity,
        conversations: Conversations | None = None,
    ) -> None:
        self._command = command
        self._resolve_identity = resolve_identity
        self._conversations = conversations or Conversations(concierge, store)

    def answer(self, user_id: str, key: DraftKey, text: str) -> Answer:
        turn = self._conversations.reply(conversation_key(key), text, lambda: self._resolve_identity(user_id))
        return self._shown(user_id, text, turn)

    def _shown(self, user_id: str, text: str, turn: Turn) -> Answer:
        match turn:
            case Previewed(prepared=prepared):
                return Answer(f"Preview of request {prepared.request_id[:8]}", blocks.preview(prepared))
            case Confirming(prepared=prepared, summary=summary):
                shown = [
                    blocks.section(
                        f"Here is the request again, {blocks.escaped(summary)}: press *Submit* to run it."
                    ),
                    *blocks.preview(prepared),
                ]
                return Answer(f"Preview of request {prepared.request_id[:8]}", shown)
            case AlreadySubmitted(request_id=request_id, job_id=job_id):
                done = (
                    f":rocket: Request {request_id[:8]} was already submitted as job "
                    f"*{blocks.escaped(job_id)}*."
                )
                return Answer(f"Already submitted as job {job_id}", blocks.notice(done))
            case Asked(question=question):
                return Answer(question, blocks.notice(f":question: {blocks.escaped(question)}"))
            case Dropped(request_id=request_id):
                dropped = f"request {request_id[:8]}" if request_id else "the request"
                said = f":wastebasket: Dropped {dropped}; nothing was submitted."
                return Answer(f"Dropped {dropped}", blocks.notice(said))
            case Aside():
                return self._command.answer(user_id, text)


def first_delivery(store: Store, user_id: str, event_id: str) -> bool:
    """Claim the event: True for the delivery that answers it, False for a repeat (Slack retries)."""
    return store.claim(f"slack-event:{event_id}", user_id)


def is_from_a_person(event: dict[str, Any]) -> bool:
    # Edits, deletions, joins and bots' posts (ours included) all carry a subtype or a bot_id.
    return bool(event.get("user")) and not event.get("subtype") and not event.get("bot_id")


class ConversationListener:
    """The Bolt side: filters events, claims them once, answers in the thread."""

    def __init__(self, conversation: Conversation, store: Store) -> None:
        self._conversation = conversation
        self._store = store

    def direct_message(self, body: dict[str, Any], client: WebClient) -> None:
        event = body.get("event") or {}
        if event.get("channel_type") == "im":
            self._answer(body, event, client)

    def mention(self, body: dict[str, Any], client: WebClient) -> None:
        self._answer(body, body.get("event") or {}, client)

    def _answer(self, body: dict[str, Any], event: dict[str, Any], client: WebClient) -> None:
        if not is_from_a_person(event):
            return
        user_id, channel = str(event["user"]), str(event["channel"])
        thread_ts = str(event.get("thread_ts") or event["ts"])
        event_id = str(body.get("event_id") or f"{channel}:{event['ts']}")
        if not first_delivery(self._store, user_id, event_id):
            log.info("event %s was delivered again; it is answered already", event_id)
            return

        def reply(text: str) -> object:
            return client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

        with replying(reply):
            answer = self._conversation.answer(user_id, (channel, thread_ts, user_id), spoken_text(event))
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=answer.text, blocks=blocks.as_dicts(answer.blocks)
            )
