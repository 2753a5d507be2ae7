"""HTTP mode's front (bot/slack/http_front.py) over real HTTP on 127.0.0.1.

Commands, clicks and events are answered 200 with an empty body as soon as their signature checks
out, and reach the real Bolt app (`build_app`, real WebClient against the fake Slack, real store on
SQLite and PostgreSQL) afterwards; what needs an answer in the response (url_verification, a
view submission's field errors) still gets Bolt's answer. The protocol tests use a small Bolt app
of their own, since they need no store.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.http_front import HttpFront, answered_by_empty_ack
from tests.integration.test_slack_door import (
    ALICE,
    REQUEST_TEXT,
    SECRET,
    Door,
    buttons,
    door,
    fake,
    shown_text,
)
from tests.integration.test_slack_form import entered
from tests.slack_fake import FakeSlack, block_action_body, signed_request, slash_command_body
from tests.slack_fake.inbound import (
    block_action_payload,
    event_callback_body,
    message_event,
    view_submission_body,
    view_submission_payload,
)

__all__ = ["door", "fake"]  # the fixtures, used by name

PATH = "/slack/events"
SETTLE_S = 0.3  # how long nothing may follow a refused request, or a second answer an event
REFUSED = {"error": "invalid request"}  # Bolt's body for a bad signature, kept by the front


@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Endpoint:
    port: int

    def post(
        self,
        body: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        extra: dict[str, str] | None = None,
        connection: http.client.HTTPConnection | None = None,
        method: str = "POST",
        path: str = PATH,
    ) -> Reply:
        headers = {**signed_request(secret, body, timestamp), **(extra or {})}
        peer = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        started = time.monotonic()
        peer.request(method, path, body=body.encode(), headers=headers)
        response = peer.getresponse()
        text = response.read().decode()
        seconds = time.monotonic() - started
        if connection is None:
            peer.close()
        return Reply(response.status, text, seconds)

    def raw(self, request: bytes) -> bytes:
        """Sends bytes as they are and returns everything the front sends back before closing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as peer:
            peer.sendall(request)
            received = b""
            while chunk := peer.recv(65536):
                received += chunk
        return received


@contextmanager
def serving(app: App, secret: str | None = SECRET, *, hold_s: float | None = None) -> Iterator[Endpoint]:
    """The front on a free port; `hold_s` keeps acknowledged requests from Bolt that long."""
    holding = {} if hold_s is None else {"quiet_s": hold_s, "longest_hold_s": hold_s}
    front = HttpFront(app, "127.0.0.1", 0, PATH, signing_secret=secret, **holding)
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(front.server_port)
    finally:
        front.shutdown()
        front.server_close()
        thread.join(5)


@pytest.fixture
def front(door: Door) -> Iterator[Endpoint]:
    with serving(door.app) as endpoint:
        yield endpoint


def command(door: Door, text: str) -> tuple[str, str]:
    """A /gpu body from Alice and the response_url its answer goes to."""
    url = door.response_url()
    return slash_command_body(text, user_id=ALICE.requester, response_url=url), url


# -- with the real app ------------------------------------------------------------------------


def test_a_signed_command_gets_an_empty_200_before_the_work_and_its_answer_follows(
    door: Door, front: Endpoint
) -> None:
    door.backend.gate = threading.Event()  # planning hangs until the test opens the gate
    body, url = command(door, REQUEST_TEXT)
    reply = front.post(body)
    assert (reply.status, reply.body) == (200, "") and reply.seconds < 1.0
    assert door.fake.responses == []
    door.backend.gate.set()
    (preview,) = door.answers_to(url)
    (request,) = door.store.history(ALICE.requester)
    (submit,) = buttons(preview, SUBMIT_ACTION)
    assert preview["response_type"] == "ephemeral" and submit["value"] == request.id
    assert "#SBATCH --gres=gpu:1" in shown_text(preview)


@pytest.mark.parametrize(
    ("secret", "age_s", "stamp"),
    [("forged-secret", 0, None), (SECRET, 301, None), (SECRET, 0, "soon")],
    ids=["forged", "stale", "unreadable-timestamp"],
)
def test_a_bad_signature_is_refused_with_401_and_nothing_runs(
    door: Door, front: Endpoint, secret: str, age_s: int, stamp: str | None
) -> None:
    body, _ = command(door, REQUEST_TEXT)
    extra = {"X-Slack-Request-Timestamp": stamp} if stamp else None
    reply = front.post(body, secret=secret, timestamp=int(time.time()) - age_s, extra=extra)
    assert (reply.status, reply.json()) == (401, REFUSED)
    time.sleep(SETTLE_S)  # nothing may follow in the background either
    assert door.fake.responses == [] and door.store.history(ALICE.requester) == []


def test_a_click_is_acknowledged_empty_and_submits_one_job(door: Door, front: Endpoint) -> None:
    request_id = door.preview_request_id()
    url = door.response_url()
    body = block_action_body(SUBMIT_ACTION, request_id, ALICE.requester, response_url=url, is_ephemeral=True)
    reply = front.post(body)
    assert (reply.status, reply.body) == (200, "")
    (answer,) = door.answers_to(url)
    job_id = door.store.request(request_id).job_id
    assert job_id is not None and f"Submitted job {job_id}" in shown_text(answer)
    assert len(door.backend.submitted) == 1


def test_a_view_submissions_field_errors_come_back_in_the_response(door: Door, front: Endpoint) -> None:
    values = entered(gpus="two", gpu_type="a100", time="soonish", command="python train.py")
    reply = front.post(view_submission_body("gpu_new_request", values, ALICE.requester))
    answer = reply.json()
    assert reply.status == 200 and answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"gpus", "time"} and "soonish" in answer["errors"]["time"]
    assert door.store.history(ALICE.requester) == []


def test_a_dm_and_its_retries_are_acknowledged_empty_and_answered_once(door: Door, front: Endpoint) -> None:
    message = message_event("2 a100 for 1 hour to run python x.py", user_id=ALICE.requester)
    body = event_callback_body(message, event_id="Ev0FRONTRETRY")
    for retry in (0, 1, 2):
        extra = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        reply = front.post(body, extra=extra)
        assert (reply.status, reply.body) == (200, "")
    door.fake.wait_for("chat.postMessage")
    time.sleep(SETTLE_S)
    (preview,) = door.fake.calls_to("chat.postMessage")
    assert preview["thread_ts"] == message["ts"] and "#SBATCH --gres=gpu:2" in shown_text(preview)


def test_url_verification_is_answered_with_its_challenge(door: Door, front: Endpoint) -> None:
    challenge = uuid4().hex
    body = json.dumps({"token": "unused", "challenge": challenge, "type": "url_verification"})
    reply = front.post(body)
    assert (reply.status, reply.json()) == (200, {"challenge": challenge})


# -- the protocol, with a small Bolt app of the test's own --------------------------------------


@dataclass
class Probe:
    """A Bolt app whose /gpu ack listener waits at a gate; `bodies` records what it received."""

    app: App
    gate: threading.Event
    started: threading.Event
    bodies: list[dict[str, Any]]


@pytest.fixture
def probe(fake: FakeSlack) -> Probe:
    app = App(signing_secret=SECRET, client=WebClient(token="xoxb-test", base_url=fake.api_url))
    gate, started, bodies = threading.Event(), threading.Event(), []

    @app.command("/gpu")
    def slow_ack(ack: Ack, body: dict[str, Any]) -> None:
        started.set()
        gate.wait(10)
        bodies.append(body)
        ack()

    return Probe(app, gate, started, bodies)


def test_the_200_does_not_wait_for_the_ack_listener(probe: Probe) -> None:
    body = slash_command_body("queue", response_url="https://hooks.slack.invalid/commands/x")
    with serving(probe.app) as endpoint:
        reply = endpoint.post(body)
        assert (reply.status, reply.body) == (200, "") and reply.seconds < 1.0
        assert probe.started.wait(5) and probe.bodies == []  # Bolt has it, its listener is still busy
        probe.gate.set()
        deadline = time.monotonic() + 5
        while not probe.bodies and time.monotonic() < deadline:
            time.sleep(0.01)
    (received,) = probe.bodies
    assert (received["command"], received["text"]) == ("/gpu", "queue")


def test_acknowledged_requests_wait_for_a_pause_and_still_reach_bolt_at_shutdown(probe: Probe) -> None:
    probe.gate.set()
    with serving(probe.app, hold_s=60) as endpoint:
        assert endpoint.post(slash_command_body("queue")).status == 200
        time.sleep(SETTLE_S)
        assert not probe.started.is_set()  # held: no pause of 60 s in arrivals yet
    (received,) = probe.bodies  # shutting down released it to Bolt, which ran before the close returned
    assert received["text"] == "queue"


def test_without_a_signing_secret_every_request_waits_for_bolt(probe: Probe) -> None:
    body = slash_command_body("queue", response_url="https://hooks.slack.invalid/commands/x")
    probe.gate.set()
    with serving(probe.app, secret=None) as endpoint:
        assert endpoint.post(body).status == 200
        assert len(probe.bodies) == 1  # Bolt's listener ran before the answer came back
        assert endpoint.post(body, secret="forged-secret").status == 401  # Bolt's own check
    assert len(probe.bodies) == 1


def test_one_connection_carries_several_requests(probe: Probe) -> None:
    probe.gate.set()
    with serving(probe.app) as endpoint:
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
        replies = [endpoint.post(slash_command_body(f"why {n}"), connection=connection) for n in (1, 2, 3)]
        connection.close()
        assert [(r.status, r.body) for r in replies] == [(200, "")] * 3
        deadline = time.monotonic() + 5
        while len(probe.bodies) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert sorted(b["text"] for b in probe.bodies) == ["why 1", "why 2", "why 3"]


def test_other_paths_and_methods_are_not_found(probe: Probe) -> None:
    with serving(probe.app) as endpoint:
        assert endpoint.post("", method="GET").status == 404
        assert endpoint.post(slash_command_body("queue"), path="/other").status == 404
    assert not probe.started.is_set()


def test_expect_100_continue_is_honoured_and_chunked_bodies_are_refused(probe: Probe) -> None:
    probe.gate.set()
    body = slash_command_body("queue").encode()
    headers = "".join(f"{k}: {v}\r\n" for k, v in signed_request(SECRET, body.decode()).items())
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}"
    with serving(probe.app) as endpoint:
        continued = endpoint.raw(
            f"{head}Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode() + body
        )
        chunked = endpoint.raw(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
    assert continued.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert continued.endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 501 Not Implemented\r\n")


# -- which bodies are answered before Bolt sees them ---------------------------------------------


def _form(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


@pytest.mark.parametrize(
    ("body", "empty_ack"),
    [
        (slash_command_body("2 a100 for 4h"), True),
        (_form(block_action_payload(SUBMIT_ACTION, "r1")), True),
        (event_callback_body(message_event("hi")), True),
        (_form(view_submission_payload("gpu_new_request", {})), False),
        (_form({"type": "block_suggestion", "action_id": "a", "value": "a1"}), False),
        (_form({"type": "shortcut", "callback_id": "new", "trigger_id": "t"}), False),
        (_form({"type": "view_closed", "view": {}}), False),
        (json.dumps({"type": "url_verification", "challenge": "c"}), False),
        ("ssl_check=1&token=abc&command=%2Fgpu", False),
        ("payload=%7Bnot+json", False),
        ("{not json", False),
        ("", False),
    ],
    ids=[
        "command",
        "block_actions",
        "event_callback",
        "view_submission",
        "block_suggestion",
        "shortcut",
        "view_closed",
        "url_verification",
        "ssl_check",
        "bad-payload",
        "bad-json",
        "empty",
    ],
)
def test_which_bodies_are_acknowledged_before_bolt(body: str, empty_ack: bool) -> None:
    assert answered_by_empty_ack(body) is empty_ack
