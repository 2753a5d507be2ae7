"""The fake Slack against the real slack_sdk clients: if these pass, the bot's tests can trust it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests.slack_fake import (
    FakeSlack,
    block_action_body,
    signed_request,
    slash_command_body,
    slash_command_fields,
    socket_mode_envelope,
)

BOT_TOKEN = "xoxb-test-token"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    web = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
    web.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    return web


def test_auth_test_names_the_bot(fake: FakeSlack, client: WebClient) -> None:
    answer = client.auth_test()
    assert (answer["user_id"], answer["team_id"]) == (fake.bot_user_id, fake.team_id)
    assert fake.calls[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"


def test_post_update_and_ephemeral_are_recorded_with_decoded_blocks(
    fake: FakeSlack, client: WebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*4 × A100*"}}]
    posted = client.chat_postMessage(channel="C1", text="preview", blocks=blocks)
    client.chat_update(channel="C1", ts=posted["ts"], text="submitted: 1234")
    ephemeral = client.chat_postEphemeral(channel="C1", user="U1", text="only you")

    assert posted["channel"] == "C1" and posted["message"]["blocks"] == blocks
    assert fake.calls_to("chat.postMessage")[0]["blocks"] == blocks
    assert fake.calls_to("chat.update") == [{"channel": "C1", "ts": posted["ts"], "text": "submitted: 1234"}]
    assert fake.calls_to("chat.postEphemeral")[0]["user"] == "U1"
    assert ephemeral["message_ts"] != posted["ts"]


def test_posting_to_a_user_lands_in_their_dm(client: WebClient) -> None:
    opened = client.conversations_open(users="U42")
    posted = client.chat_postMessage(channel="U42", text="hi")
    assert posted["channel"] == opened["channel"]["id"] == "D42"


def test_wait_for_sees_calls_from_background_threads(fake: FakeSlack, client: WebClient) -> None:
    worker = threading.Timer(0.2, lambda: client.chat_postMessage(channel="C1", text="later"))
    worker.start()
    assert fake.wait_for("chat.postMessage", timeout=5)[0]["text"] == "later"
    with pytest.raises(AssertionError, match=r"chat\.update"):
        fake.wait_for("chat.update", timeout=0.1)


def test_unknown_method_and_missing_token_are_refused(fake: FakeSlack, client: WebClient) -> None:
    with pytest.raises(SlackApiError) as unknown:
        client.api_call("no.suchMethod")
    assert unknown.value.response["error"] == "unknown_method"
    with pytest.raises(SlackApiError) as anonymous:
        WebClient(base_url=fake.api_url).chat_postMessage(channel="C1", text="x")
    assert anonymous.value.response["error"] == "not_authed"


def test_rate_limit_then_success_with_the_retry_handler(fake: FakeSlack, client: WebClient) -> None:
    fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    answer = client.chat_postMessage(channel="C1", text="paced")
    assert answer["ok"]
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert [call.status for call in fake.calls] == [429, 200]
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_rate_limit_without_a_retry_handler_raises_ratelimited(fake: FakeSlack) -> None:
    fake.rate_limit("chat.update", times=1, retry_after=3)
    with pytest.raises(SlackApiError) as raised:
        WebClient(token=BOT_TOKEN, base_url=fake.api_url).chat_update(channel="C1", ts="1.2", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "3"
    assert raised.value.response["error"] == "ratelimited"


def test_files_upload_v2_end_to_end(fake: FakeSlack, client: WebClient) -> None:
    content = "#!/bin/bash\n#SBATCH --gres=gpu:a100:4\n"
    answer = client.files_upload_v2(channel="C1", filename="job.sbatch", content=content, title="script")
    assert answer["file"]["name"] == "job.sbatch" and answer["file"]["size"] == len(content)
    assert fake.uploads == {answer["file"]["id"]: content.encode()}
    completed = fake.calls_to("files.completeUploadExternal")[0]
    assert completed["channel_id"] == "C1" and completed["files"][0]["title"] == "script"


def test_users_by_id_email_and_profile(fake: FakeSlack, client: WebClient) -> None:
    fake.add_user("U7", "ada", "Ada@Example.org", tz="Europe/London")
    assert client.users_lookupByEmail(email="ada@example.org")["user"]["id"] == "U7"
    assert client.users_info(user="U7")["user"]["tz"] == "Europe/London"
    assert client.users_profile_get(user="U7")["profile"]["email"] == "Ada@Example.org"
    with pytest.raises(SlackApiError) as missing:
        client.users_lookupByEmail(email="nobody@example.org")
    assert missing.value.response["error"] == "users_not_found"


def test_views_and_permalink(fake: FakeSlack, client: WebClient) -> None:
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    published = client.views_publish(user_id="U1", view=home)
    assert published["view"]["type"] == "home" and published["view"]["id"]
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "New job"}, "blocks": []}
    opened = client.views_open(trigger_id="t", view=modal)
    updated = client.views_update(view_id=opened["view"]["id"], view=modal)
    assert updated["view"]["id"] == opened["view"]["id"]
    assert fake.calls_to("views.publish")[0]["view"] == home
    link = client.chat_getPermalink(channel="C1", message_ts="1700000000.000100")
    assert link["permalink"].endswith("/archives/C1/p1700000000000100")


def test_response_url_records_posts_and_allows_five_uses(fake: FakeSlack) -> None:
    webhook = WebhookClient(fake.response_url("cmd-1"))
    statuses = [webhook.send(text=f"reply {n}", response_type="ephemeral").status_code for n in range(6)]
    assert statuses == [200] * 5 + [404]
    posts = fake.wait_for_responses(5)
    assert [post.body["text"] for post in posts] == [f"reply {n}" for n in range(5)]
    assert {post.token for post in posts} == {"cmd-1"}


def test_signed_request_verifies_and_tampering_does_not() -> None:
    body = slash_command_body("run 2 gpus", user_id="U9", response_url="http://127.0.0.1:1/r")
    headers = signed_request("shh", body)
    verifier = SignatureVerifier("shh")
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + "x", headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    stale = signed_request("shh", body, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, stale)
    assert parse_qs(body)["user_id"] == ["U9"] and parse_qs(body)["command"] == ["/gpu"]


def test_block_action_body_is_a_form_encoded_payload() -> None:
    body = block_action_body("submit", "req-1", "U3", message_ts="1.000200", channel="C5")
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["actions"][0]["action_id"] == "submit" and payload["actions"][0]["value"] == "req-1"
    assert payload["container"]["message_ts"] == payload["message"]["ts"] == "1.000200"
    ephemeral = json.loads(parse_qs(block_action_body("submit", "v", is_ephemeral=True))["payload"][0])
    assert "message" not in ephemeral and ephemeral["container"]["is_ephemeral"]


def test_socket_mode_client_connects_receives_and_acks(fake: FakeSlack) -> None:
    received: list[dict[str, Any]] = []

    def on_request(socket_client: Any, request: SocketModeRequest) -> None:
        received.append(request.payload)
        socket_client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))

    web = WebClient(base_url=fake.api_url)
    socket_client = SocketModeClient(app_token="xapp-1-test", web_client=web, auto_reconnect_enabled=False)
    socket_client.socket_mode_request_listeners.append(on_request)
    socket_client.connect()
    try:
        fake.socket.wait_for_connection()
        envelope = socket_mode_envelope("slash_commands", slash_command_fields("queue", user_id="U5"))
        envelope_id = fake.socket.send_envelope(envelope)
        assert fake.socket.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
        assert received[0]["text"] == "queue" and received[0]["user_id"] == "U5"
    finally:
        socket_client.close()
    assert fake.calls[0].method == "apps.connections.open"


def test_connections_open_needs_an_app_token(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as refused:
        client.apps_connections_open(app_token=BOT_TOKEN)
    assert refused.value.response["error"] == "not_allowed_token_type"
