"""Socket Mode: the app dials the fake's websocket (URL from apps.connections.open) and answers there.

Envelopes are acked on the socket before the work; a redelivered envelope (`retry_attempt` 1, as
Slack sends when an ack was late) must not make a second job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from backends.types import Identity
from bot.engine import Concierge
from bot.slack.app import build_app
from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.serve import socket_mode_handler
from bot.slack.settings import SlackSettings
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.integration.test_slack_door import REQUEST_TEXT, FakeBackend, buttons
from tests.slack_fake import FakeSlack, block_action_payload, slash_command_fields, socket_mode_envelope

ALICE = Identity(requester="U0ALICE", unix_user="alice")


@pytest.fixture
def connected(sqlite_url: str) -> Iterator[tuple[FakeSlack, SocketModeHandler, FakeBackend]]:
    # The transport is under test here, not the database: SQLite only (its close takes ~3 s).
    store = Store(sqlite_url)
    store.migrate()
    store.map_identity(ALICE)
    backend = FakeBackend()
    concierge = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    settings = SlackSettings.model_validate({"bot_token": "xoxb-test", "app_token": "xapp-test"})
    with FakeSlack() as fake:
        app = build_app(
            concierge, store, settings, client=WebClient(token="xoxb-test", base_url=fake.api_url)
        )
        handler = socket_mode_handler(app, settings)
        handler.client.connect()
        try:
            fake.socket.wait_for_connection()
            yield fake, handler, backend
        finally:
            handler.client.close()
            store.close()


def answers_on(fake: FakeSlack, url: str, count: int = 1) -> list[dict[str, Any]]:
    token = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [post.body for post in fake.responses if post.token == token]
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise AssertionError(f"expected {count} answer(s) on {url}, got {fake.responses}")


def test_a_command_over_socket_mode_is_acked_and_answered(
    connected: tuple[FakeSlack, SocketModeHandler, FakeBackend],
) -> None:
    fake, _, backend = connected
    assert fake.calls_to("apps.connections.open")  # the app asked for the URL with its xapp- token
    url = fake.response_url(uuid4().hex)
    fields = slash_command_fields(REQUEST_TEXT, user_id=ALICE.requester, response_url=url)
    envelope_id = fake.socket.send_envelope(socket_mode_envelope("slash_commands", dict(fields)))
    assert fake.socket.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
    (preview,) = answers_on(fake, url)
    (submit,) = buttons(preview, SUBMIT_ACTION)

    # Slack redelivers the click (retry_attempt 1): still one job.
    click_urls = [fake.response_url(uuid4().hex) for _ in range(2)]
    for attempt, click_url in enumerate(click_urls):
        payload = block_action_payload(
            SUBMIT_ACTION, submit["value"], ALICE.requester, response_url=click_url, is_ephemeral=True
        )
        sent = fake.socket.send_envelope(socket_mode_envelope("interactive", payload, retry_attempt=attempt))
        fake.socket.wait_for_ack(sent)
    answers = [answers_on(fake, click_url)[0] for click_url in click_urls]
    assert len(backend.submitted) == 1
    job_id = f"Submitted job {500 + 1}"
    assert any(job_id in str(a.get("text")) for a in answers)
