"""Socket Mode: the app dials the fake's websocket (URL from apps.connections.open) and answers there.

Envelopes are acked on the socket before the work; a redelivered envelope (`retry_attempt` 1, as
Slack sends when an ack was late) must not make a second job.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from uuid import uuid4

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.serve import socket_mode_handler
from bot.store import Store
from tests.fakes.slack_app import ALICE, REQUEST_TEXT, Door, buttons, make_door, slack_settings
from tests.slack_fake import FakeSlack, block_action_payload, slash_command_fields, socket_mode_envelope

SOCKET_MODE = {"mode": "socket", "app_token": "xapp-test", "signing_secret": None}


@pytest.fixture
def connected(sqlite_url: str) -> Iterator[tuple[Door, SocketModeHandler]]:
    # The transport is under test here, not the database: SQLite only (its close takes ~3 s).
    store = Store(sqlite_url)
    store.migrate()
    store.map_identity(ALICE)
    with FakeSlack() as fake:
        door = make_door(store, fake, **SOCKET_MODE)
        handler = socket_mode_handler(door.app, slack_settings(**SOCKET_MODE))
        handler.client.connect()
        try:
            fake.socket.wait_for_connection()
            yield door, handler
        finally:
            handler.client.close()
            store.close()


def test_a_command_over_socket_mode_is_acked_and_answered(connected: tuple[Door, SocketModeHandler]) -> None:
    door, _ = connected
    fake = door.fake
    assert fake.calls_to("apps.connections.open")  # the app asked for the URL with its xapp- token
    url = fake.response_url(uuid4().hex)
    fields = slash_command_fields(REQUEST_TEXT, user_id=ALICE.requester, response_url=url)
    envelope_id = fake.socket.send_envelope(socket_mode_envelope("slash_commands", dict(fields)))
    assert fake.socket.wait_for_ack(envelope_id)["envelope_id"] == envelope_id
    (preview,) = door.answers_to(url)
    (submit,) = buttons(preview, SUBMIT_ACTION)

    # Slack redelivers the click (retry_attempt 1): still one job.
    click_urls = [fake.response_url(uuid4().hex) for _ in range(2)]
    for attempt, click_url in enumerate(click_urls):
        payload = block_action_payload(
            SUBMIT_ACTION, submit["value"], ALICE.requester, response_url=click_url, is_ephemeral=True
        )
        sent = fake.socket.send_envelope(socket_mode_envelope("interactive", payload, retry_attempt=attempt))
        fake.socket.wait_for_ack(sent)
    answers = [door.answers_to(click_url)[0] for click_url in click_urls]
    assert len(door.backend.submitted) == 1
    job_id = f"Submitted job {500 + 1}"
    assert any(job_id in str(a.get("text")) for a in answers)


def test_a_click_is_acked_while_the_database_cannot_be_written(
    connected: tuple[Door, SocketModeHandler], sqlite_url: str
) -> None:
    """Nothing touches the database before Slack's ack: with another writer holding SQLite's write
    lock, a Submit click (in a channel, so its thread is remembered) is still acked at once, and
    submitted once the lock is let go. (A Bolt middleware used to remember the thread first, so the
    ack waited out the store's 5 s busy timeout.)"""
    door, _ = connected
    fake = door.fake
    url = fake.response_url(uuid4().hex)
    fields = slash_command_fields(REQUEST_TEXT, user_id=ALICE.requester, response_url=url)
    fake.socket.wait_for_ack(fake.socket.send_envelope(socket_mode_envelope("slash_commands", dict(fields))))
    (submit,) = buttons(door.answers_to(url)[0], SUBMIT_ACTION)

    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    writer.execute("BEGIN IMMEDIATE")  # the database now refuses every other writer
    try:
        click_url = fake.response_url(uuid4().hex)
        payload = block_action_payload(
            SUBMIT_ACTION, submit["value"], ALICE.requester, response_url=click_url
        )
        started = time.monotonic()
        fake.socket.wait_for_ack(fake.socket.send_envelope(socket_mode_envelope("interactive", payload)))
        acked_after = time.monotonic() - started
    finally:
        writer.rollback()
        writer.close()
    assert acked_after < 1.0
    (shared,) = fake.wait_for("chat.update", timeout=10)  # the shared preview, replaced
    assert "Submitted job" in shared["text"]
    assert door.store.thread_for(submit["value"]) == (
        payload["channel"]["id"],
        payload["container"]["message_ts"],
    )
