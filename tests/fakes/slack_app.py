"""The one Slack app builder every Slack test uses, and the `Door` a test drives it through.

The app is the real one from `build_app`, with a real `WebClient` pointed at the fake Slack Web API
(tests/slack_fake) and the real `Concierge` over the test's store; only the cluster is the shared
fake backend. Signed requests go through `app.dispatch`, bolt-python's own test style. The `fake`
and `door` fixtures (registered in tests/conftest.py) give a test a running fake Slack and the
default door over it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import pytest
from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from backends.types import Identity
from bot.conversations import Conversations
from bot.engine import Concierge, Understand
from bot.settings import NudgeSettings
from bot.slack.app import build_app
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.job_updates import JobUpdates
from bot.slack.settings import SlackSettings
from bot.store import Store
from bot.tracker import Tracker
from bot.understanding.grammar import understand
from policies import load_policy
from tests.fakes.backend import FakeBackend
from tests.slack_fake import FakeSlack, ResponseUrlPost, block_action_body, signed_request, slash_command_body
from tests.slack_fake.inbound import DEFAULT_CHANNEL_ID, event_callback_body, message_event

SECRET = "test-signing-secret"
ALICE = Identity(requester="U0ALICE", unix_user="alice", k8s_user="alice")
BOB = Identity(requester="U0BOB", unix_user="bob", k8s_user="bob")
REQUEST_TEXT = "1 a100 for 2 hours to run python train.py"
WAIT_S = 10.0
SETTLE_S = 0.3  # how long nothing more may arrive after the expected answers
# People are mapped by their Slack email's local part, at the site's domain only.
EMAIL_RULE: dict[str, Any] = {"identity_rule": "email_local_part", "email_domains": ["example.org"]}


def slack_settings(**overrides: Any) -> SlackSettings:
    """HTTP mode with the test's signing secret, and whatever the test changes."""
    return SlackSettings.model_validate(
        {"bot_token": "xoxb-test", "signing_secret": SECRET, "mode": "http"} | overrides
    )


@dataclass
class Door:
    """The app under test and what it talks to."""

    app: App
    fake: FakeSlack
    backend: FakeBackend
    store: Store

    def response_url(self) -> str:
        return self.fake.response_url(uuid4().hex)

    def dispatch(
        self,
        body: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> BoltResponse:
        sent: dict[str, str | Sequence[str]] = {**signed_request(secret, body, timestamp), **(headers or {})}
        return self.app.dispatch(BoltRequest(body=body, headers=sent))

    def command(self, text: str, user: Identity = ALICE) -> tuple[BoltResponse, str]:
        url = self.response_url()
        return self.dispatch(slash_command_body(text, user_id=user.requester, response_url=url)), url

    def click(
        self,
        action: str,
        request_id: str,
        user: Identity = ALICE,
        *,
        ephemeral: bool = True,
        channel: str = DEFAULT_CHANNEL_ID,
    ) -> str:
        url = self.response_url()
        body = block_action_body(
            action, request_id, user.requester, response_url=url, is_ephemeral=ephemeral, channel=channel
        )
        assert self.dispatch(body).status == 200
        return url

    def deliver(self, event: dict[str, Any], *, event_id: str | None = None, retry: int = 0) -> BoltResponse:
        """An Events API delivery (`retry` > 0: Slack sending it again after a late ack)."""
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        response = self.dispatch(event_callback_body(event, event_id=event_id), headers=headers)
        assert response.status == 200
        return response

    def say(self, text: str, *, thread_ts: str | None = None, **event: Any) -> str:
        """A DM from Alice; returns its ts."""
        message = message_event(text, user_id=ALICE.requester, thread_ts=thread_ts, **event)
        self.deliver(message)
        return str(message["ts"])

    def posts(self, count: int) -> list[dict[str, Any]]:
        """Exactly `count` chat.postMessage calls, once nothing more arrives."""
        self.fake.wait_for("chat.postMessage", count)
        time.sleep(SETTLE_S)
        found = self.fake.calls_to("chat.postMessage")
        assert len(found) == count, found
        return found

    def answers_to(self, url: str, count: int = 1) -> list[dict[str, Any]]:
        token = url.rsplit("/", 1)[1]
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            found = [post.body for post in self.fake.responses if post.token == token]
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"expected {count} answer(s) on {url}, got {self.fake.responses}")

    def first_answer(self, urls: Sequence[str]) -> ResponseUrlPost:
        tokens = {url.rsplit("/", 1)[1] for url in urls}
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for post in self.fake.responses:
                if post.token in tokens:
                    return post
            time.sleep(0.01)
        raise AssertionError(f"no answer on any of {urls}: {self.fake.responses}")

    def preview_request_id(self, text: str = REQUEST_TEXT) -> str:
        response, url = self.command(text)
        assert response.status == 200
        (preview,) = self.answers_to(url)
        (submit,) = buttons(preview, SUBMIT_ACTION)
        return str(submit["value"])


def slack_app(
    store: Store,
    fake: FakeSlack,
    concierge: Concierge,
    *,
    conversations: Conversations | None = None,
    nudges: NudgeSettings | None = None,
    **settings: Any,
) -> App:
    """The real app over `concierge`, talking to `fake`; `settings` as in `slack_settings`."""
    client = WebClient(token="xoxb-test", base_url=fake.api_url)
    return build_app(
        concierge,
        store,
        slack_settings(**settings),
        client=client,
        conversations=conversations,
        nudges=nudges,
    )


def make_door(
    store: Store,
    fake: FakeSlack,
    backend: FakeBackend | None = None,
    *,
    reader: Understand = understand,
    conversations: Conversations | None = None,
    nudges: NudgeSettings | None = None,
    **settings: Any,
) -> Door:
    """The app over a real engine whose one cluster is `backend` (a new fake one unless given)."""
    backend = backend or FakeBackend()
    concierge = Concierge(store, {"slurm": backend}, reader, load_policy(None))
    app = slack_app(store, fake, concierge, conversations=conversations, nudges=nudges, **settings)
    return Door(app, fake, backend, store)


def entered(**fields: str) -> dict[str, dict[str, dict[str, Any]]]:
    """`view.state.values` for text fields (the GPU type as a chosen option)."""
    values: dict[str, dict[str, dict[str, Any]]] = {}
    for block_id, text in fields.items():
        if block_id == "gpu_type":
            values[block_id] = {"value": {"type": "static_select", "selected_option": {"value": text}}}
        else:
            values[block_id] = {"value": {"type": "plain_text_input", "value": text}}
    return values


def one_round(tracker: Tracker, updates: JobUpdates) -> int:
    """What `follow_jobs` does each interval: poll the jobs, post what is new; how many posted."""
    tracker.poll_once()
    return updates.post_new()


def buttons(message: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks", [])
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]


def shown_text(message: dict[str, Any]) -> str:
    """Everything a person would read in a message: its text and its blocks' text."""
    return str(message.get("text", "")) + json.dumps(message.get("blocks", []))


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.fixture
def door(store: Store, fake: FakeSlack) -> Door:
    """Alice and Bob mapped; people otherwise mapped by their email at example.org."""
    store.map_identity(ALICE)
    store.map_identity(BOB)
    return make_door(store, fake, **EMAIL_RULE)
