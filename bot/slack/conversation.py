"""DMs and @mentions as conversations: the same answers as `/gpu`, in the message's thread.

A message is answered in its thread (the message's `thread_ts`, or its own `ts` when it starts one)
with exactly what `/gpu <text>` would answer (`GpuCommand.answer`), so the two doors never drift.

Follow-ups refer to the thread's draft: the last request previewed in that thread for that person.
"make it 4 GPUs", "use H100 instead", "for 3 hours" change the draft's fields (read with the
grammar's own detail reader), and the changed request is written back as one plain sentence that
the engine understands again; it is prepared afresh (a new preview, new buttons) only when that
sentence reads back as exactly the changed request, otherwise the person is asked to say it whole,
so a follow-up can never run something other than what its preview shows. The old draft is settled
as `superseded`, so its Submit button no longer works. "submit it" shows the draft's preview again:
nothing runs without the Submit button.

Drafts live in process memory (`ThreadDrafts`, bounded) as a first step: the store has no thread
column yet. After a restart a follow-up finds no draft and says so; the requests themselves are all
in the store.

Slack delivers an event again when it got no 200 within 3 s (`X-Slack-Retry-Num` over HTTP,
`retry_attempt` in Socket Mode), and two replicas may each get one. Every delivery claims its
`event_id` in the store (`new_request(…, idempotency_key="slack-event:<event_id>")`, unique), with
a fresh token in the claim's text: the delivery whose token is stored answers, every other one
(retry or replica) answers nothing. A retry whose first delivery never reached us finds no claim
and is answered, which is what a retry is for.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from typing import Any
from uuid import uuid4

from pydantic import ValidationError
from slack_sdk import WebClient
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from backends.errors import RequestInvalid
from backends.types import IntentKind, JobRequest
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.commands import Answer, GpuCommand, ResolveIdentity
from bot.slack.incidents import replying
from bot.slack.submission import DOOR, prepared_from
from bot.store import RequestRecord, Store
from bot.understanding.details import read_details

log = logging.getLogger("concierge.slack")

EVENT_CLAIM_PREFIX = "slack event "
SUPERSEDED = "superseded"
_OPEN = "received"
_MENTION_RE = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_SUBMIT_IT_RE = re.compile(
    r"^\s*(?:ok(?:ay)?|yes|great|good|looks\s+good|lgtm)?[\s,.!]*(?:please\s+)?"
    r"(?:submit|send|run|launch|go\s+ahead(?:\s+and\s+submit)?)(?:\s+(?:it|that|this|the\s+job))?"
    r"(?:\s+(?:now|please))?[\s.!]*$",
    re.IGNORECASE,
)
# A follow-up that names one of these is a new request, not a change to the draft.
_NEW_REQUEST_FIELDS = ("command", "image", "model")
DraftKey = tuple[str, str, str]  # channel, thread ts, Slack user id


class ThreadDrafts:
    """The request id each person's thread refers to; bounded, so memory never grows without end."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[DraftKey, str] = OrderedDict()
        self._lock = threading.Lock()
        self._thread_locks: dict[DraftKey, threading.Lock] = {}

    def get(self, key: DraftKey) -> str | None:
        with self._lock:
            return self._ids.get(key)

    def holding(self, key: DraftKey) -> threading.Lock:
        """One thread's follow-ups are answered one at a time, so none reads a draft being replaced."""
        with self._lock:
            if len(self._thread_locks) > 2 * self._capacity:
                # Threads that never got a draft (questions only) and are idle: forget their locks.
                for idle in [
                    k for k, v in self._thread_locks.items() if k not in self._ids and not v.locked()
                ]:
                    del self._thread_locks[idle]
            return self._thread_locks.setdefault(key, threading.Lock())

    def set(self, key: DraftKey, request_id: str) -> None:
        with self._lock:
            self._ids[key] = request_id
            self._ids.move_to_end(key)
            while len(self._ids) > self._capacity:
                oldest, _ = self._ids.popitem(last=False)
                self._thread_locks.pop(oldest, None)


class Conversation:
    """Answers one message, knowing the thread's draft."""

    def __init__(
        self,
        concierge: Concierge,
        store: Store,
        command: GpuCommand,
        resolve_identity: ResolveIdentity,
        drafts: ThreadDrafts | None = None,
    ) -> None:
        self._concierge = concierge
        self._store = store
        self._command = command
        self._resolve_identity = resolve_identity
        self._drafts = drafts or ThreadDrafts()

    def answer(self, user_id: str, key: DraftKey, text: str) -> Answer:
        with self._drafts.holding(key):
            return self._answer(user_id, key, text)

    def _answer(self, user_id: str, key: DraftKey, text: str) -> Answer:
        draft_id = self._drafts.get(key)
        if _SUBMIT_IT_RE.match(text):
            return self._show_draft(user_id, draft_id)
        if draft_id is not None and (changes := self._changes(text)) is not None:
            answer = self._amended(user_id, draft_id, changes)
        else:
            answer = self._command.answer(user_id, text)
        request_id = previewed_request_id(answer.blocks)
        if request_id is not None:
            self._drafts.set(key, request_id)
        return answer

    def _changes(self, text: str) -> dict[str, Any] | None:
        """The fields a follow-up changes, or None when it is a question or a whole new request."""
        intent = self._concierge.understand(text)
        if intent.kind not in (IntentKind.SUBMIT, IntentKind.UNKNOWN):
            return None
        if intent.kind == IntentKind.SUBMIT and any(
            getattr(intent.request, f) is not None for f in _NEW_REQUEST_FIELDS
        ):
            return None
        details = read_details(text)
        if details.problem is not None or not details.fields:
            return None
        return dict(details.fields)

    def _amended(self, user_id: str, draft_id: str, changes: dict[str, Any]) -> Answer:
        draft = self._store.request(draft_id)
        previous = _requested(draft)
        try:
            revised = JobRequest.model_validate({**previous.model_dump(), **changes})
        except ValidationError as e:
            raise RequestInvalid(f"that change cannot be applied: {e.errors()[0]['msg']}") from None
        text = request_text(revised)
        reread = self._concierge.understand(text)
        if reread.kind != IntentKind.SUBMIT or reread.request != revised:
            raise RequestInvalid(
                "I could not carry that change over to the previous request; please say the whole "
                'request again, e.g. "2 A100s for 4 hours to run python train.py"'
            )
        prepared = self._concierge.prepare(self._resolve_identity(user_id), text, DOOR)
        if draft.outcome == _OPEN and draft.job_id is None and draft.plan is not None:
            self._concierge.settle(prepared_from(draft), SUPERSEDED)
        return Answer(f"Preview of request {prepared.request_id[:8]}", blocks.preview(prepared))

    def _show_draft(self, user_id: str, draft_id: str | None) -> Answer:
        if draft_id is None:
            raise RequestInvalid(
                "there is no request in this thread to submit yet; say what you need first, "
                'e.g. "2 A100s for 4 hours to run python train.py"'
            )
        draft = self._store.request(draft_id)
        if draft.requester != user_id:
            raise RequestInvalid("that request is someone else's; ask for your own in a new message")
        if draft.job_id is not None:
            done = f":rocket: Request {draft_id[:8]} was already submitted as job *{draft.job_id}*."
            return Answer(f"Already submitted as job {draft.job_id}", blocks.notice(done))
        prepared = prepared_from(draft)
        shown = [
            blocks.section("Here is the request again: press *Submit* to run it."),
            *blocks.preview(prepared),
        ]
        return Answer(f"Preview of request {draft_id[:8]}", shown)


def request_text(request: JobRequest) -> str:
    """One sentence the grammar reads back as `request` (the caller checks that it does)."""
    words: list[str] = []
    if request.command is not None:
        words.append(f"`{request.command}`")
    if request.gpus is not None:
        words.append(f"on {request.gpus} {request.gpu_type or 'gpus'}")
    elif request.gpu_type is not None:
        words.append(f"on {request.gpu_type}")
    if request.gpu_memory_gb is not None:
        words.append(f"with at least {request.gpu_memory_gb}GB")
    if request.mig_profile is not None:
        words.append(request.mig_profile)
    if request.shared:
        words.append("shared")
    if request.nodes is not None:
        words.append(f"on {request.nodes} nodes")
    if request.time_limit_minutes is not None:
        words.append(f"for {request.time_limit_minutes} minutes")
    if request.cpus is not None:
        words.append(f"{request.cpus} cpus")
    if request.memory_gb is not None:
        words.append(f"{request.memory_gb}GB ram")
    for label in ("partition", "account", "qos", "namespace", "image", "model", "port"):
        value = getattr(request, label)
        if value is not None:
            words.append(f"{label} {value}")
    if request.replicas is not None:
        words.append(f"{request.replicas} replicas")
    if request.name is not None:
        words.append(f"named {request.name}")
    if request.target is not None:
        words.append("on slurm" if request.target == "slurm" else "on kubernetes")
    return " ".join(words)


def previewed_request_id(shown: list[Block]) -> str | None:
    """The request a preview is about: the value its buttons carry."""
    for block in shown:
        if isinstance(block, ActionsBlock):
            for element in block.elements:
                if isinstance(element, ButtonElement) and element.action_id == blocks.CANCEL_ACTION:
                    return element.value
    return None


def first_delivery(store: Store, user_id: str, event_id: str) -> str | None:
    """Claim the event; the claim's id when this delivery answers it, None for a repeat."""
    token = uuid4().hex
    claim = store.new_request(
        user_id,
        DOOR,
        f"{EVENT_CLAIM_PREFIX}{event_id} (delivery {token})",
        idempotency_key=f"slack-event:{event_id}",
    )
    return claim if store.request(claim).text.endswith(f"(delivery {token})") else None


def spoken_text(event: dict[str, Any]) -> str:
    """The person's words without the @mention of the bot."""
    return " ".join(_MENTION_RE.sub(" ", str(event.get("text") or "")).split())


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
        claim = first_delivery(self._store, user_id, event_id)
        if claim is None:
            log.info("event %s was delivered again; it is answered already", event_id)
            return

        def reply(text: str) -> object:
            return client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)

        with replying(reply):
            answer = self._conversation.answer(user_id, (channel, thread_ts, user_id), spoken_text(event))
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=answer.text, blocks=blocks.as_dicts(answer.blocks)
            )
        self._store.record_outcome(claim, "answered")


def _requested(record: RequestRecord) -> JobRequest:
    if record.intent is None:
        raise RequestInvalid("the previous request in this thread was not understood; say it again whole")
    printed = {k: v for k, v in record.intent.items() if k not in ("intent", "job", "message")}
    return JobRequest.model_validate(printed)
