"""HTTP mode's front (bot/slack/http_front.py, on aiohttp) over real HTTP on 127.0.0.1.

Commands, clicks and events are answered 200 with an empty body as soon as their signature checks
out, and reach the real Bolt app (`build_app`, real WebClient against the fake Slack, real store on
SQLite and PostgreSQL) afterwards; what needs an answer in the response (url_verification, a
view submission's field errors) still gets Bolt's answer. The protocol tests use a small Bolt app
of their own. The edge's limits (issue 11) are attacked the way a peer without the signing secret
would: bodies declared or streamed over the cap, peers that send nothing or trickle, more
connections than the cap, and a signed request copied and sent again to two replicas.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import uuid4

import pytest
from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import SUBMIT_ACTION
from bot.slack.http_connections import GRACE_S
from bot.slack.http_front import LONGEST_HOLD_S, QUIET_S, HttpFront, answered_by_empty_ack
from bot.slack.http_settings import HttpEdgeSettings
from bot.slack.replays import Replays
from bot.store import Store
from tests.fakes.backend import FakeBackend
from tests.fakes.slack_app import ALICE, REQUEST_TEXT, SECRET, Door, buttons, entered, make_door, shown_text
from tests.slack_fake import FakeSlack, block_action_body, signed_request, slash_command_body
from tests.slack_fake.inbound import (
    block_action_payload,
    event_callback_body,
    message_event,
    view_submission_body,
    view_submission_payload,
)

PATH = "/slack/events"
SETTLE_S = 0.3  # how long nothing may follow a refused request, or a second answer an event
REFUSED = {"error": "invalid request"}  # Bolt's body for a bad signature, kept by the front
PROMPTLY_S = 5.0  # a peer's socket timeout: an answer the front owes comes long before this
SHORT = HttpEdgeSettings(idle_timeout_s=0.5, body_timeout_s=0.5)  # limits a test can wait out


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
    front: HttpFront

    def post(
        self,
        body: str,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        extra: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        connection: http.client.HTTPConnection | None = None,
        method: str = "POST",
        path: str = PATH,
    ) -> Reply:
        sent = {**(headers or signed_request(secret, body, timestamp)), **(extra or {})}
        peer = connection or http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        started = time.monotonic()
        peer.request(method, path, body=body.encode(), headers=sent)
        response = peer.getresponse()
        text = response.read().decode()
        seconds = time.monotonic() - started
        if connection is None:
            peer.close()
        return Reply(response.status, text, seconds)

    def connect(self) -> socket.socket:
        peer = socket.create_connection(("127.0.0.1", self.port), timeout=PROMPTLY_S)
        return peer

    def raw(self, request: bytes) -> bytes:
        """Sends bytes as they are and returns everything the front sends back before closing."""
        with self.connect() as peer:
            peer.sendall(request)
            return received_until_closed(peer)


def received_until_closed(peer: socket.socket) -> bytes:
    """What the front sent before closing; a reset after its answer (unread bytes) also ends it."""
    received = b""
    try:
        while chunk := peer.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def closed_by_front(peer: socket.socket) -> bool:
    """Whether the front has closed this connection (the peer never sent anything more)."""
    try:
        return peer.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@contextmanager
def serving(
    app: App,
    store: Store,
    *,
    hold_s: float | None = None,
    edge: HttpEdgeSettings | None = None,
) -> Iterator[Endpoint]:
    """The front on a free port; `hold_s` keeps acknowledged requests from Bolt that long."""
    front = HttpFront(
        app,
        Replays(store.claim),
        "127.0.0.1",
        0,
        PATH,
        signing_secret=SECRET,
        edge=edge,
        quiet_s=QUIET_S if hold_s is None else hold_s,
        longest_hold_s=LONGEST_HOLD_S if hold_s is None else hold_s,
    )
    thread = threading.Thread(target=front.serve_forever, daemon=True)
    thread.start()
    try:
        yield Endpoint(front.server_port, front)
    finally:
        front.shutdown()
        front.server_close()
        thread.join(5)


@pytest.fixture
def front(door: Door) -> Iterator[Endpoint]:
    with serving(door.app, door.store) as endpoint:
        yield endpoint


def command(door: Door, text: str) -> tuple[str, str]:
    """A /gpu body from Alice and the response_url its answer goes to."""
    url = door.response_url()
    return slash_command_body(text, user_id=ALICE.requester, response_url=url), url


def answers_on(door: Door, url: str) -> int:
    token = url.rsplit("/", 1)[1]
    return sum(1 for post in door.fake.responses if post.token == token)


def wait_until(condition: Any, within_s: float = PROMPTLY_S) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


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


@pytest.mark.parametrize(
    "kept",
    [set(), {"X-Slack-Signature"}, {"X-Slack-Request-Timestamp"}],
    ids=["neither", "no-timestamp", "no-signature"],
)
def test_a_missing_signature_is_refused_with_401_and_nothing_runs(
    door: Door, front: Endpoint, kept: set[str]
) -> None:
    body, _ = command(door, REQUEST_TEXT)
    headers = {k: v for k, v in signed_request(SECRET, body).items() if k in kept | {"Content-Type"}}
    reply = front.post(body, headers=headers)
    assert (reply.status, reply.json()) == (401, REFUSED)
    time.sleep(SETTLE_S)
    assert door.fake.responses == [] and door.store.history(ALICE.requester) == []


def test_a_signed_request_sent_again_makes_one_preview_on_any_replica(door: Door) -> None:
    """A copy of a signed /gpu, sent again within the 300 s window to this replica and another
    (two fronts on one store), all at once: every copy gets its 200, one preview is made."""
    body, url = command(door, REQUEST_TEXT)
    copied = signed_request(SECRET, body)
    with serving(door.app, door.store) as here, serving(door.app, door.store) as there:
        sends = [here, there] * 4
        with ThreadPoolExecutor(len(sends)) as peers:
            replies = list(peers.map(lambda endpoint: endpoint.post(body, headers=copied), sends))
        assert [(r.status, r.body) for r in replies] == [(200, "")] * len(sends)
        (preview,) = door.answers_to(url)
        time.sleep(SETTLE_S)
        assert answers_on(door, url) == 1 and buttons(preview, SUBMIT_ACTION)
        assert len(door.store.history(ALICE.requester)) == 1
        # Later, one at a time, to each: still nothing new.
        assert here.post(body, headers=copied).status == there.post(body, headers=copied).status == 200
        time.sleep(SETTLE_S)
    assert answers_on(door, url) == 1 and len(door.store.history(ALICE.requester)) == 1


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
    """A Bolt app whose /gpu ack listener and `slow_view` submission wait at a gate; `bodies` records
    what the /gpu listener received."""

    app: App
    store: Store
    gate: threading.Event
    started: threading.Event
    bodies: list[dict[str, Any]]


@pytest.fixture
def probe(fake: FakeSlack, store: Store) -> Probe:
    app = App(signing_secret=SECRET, client=WebClient(token="xoxb-test", base_url=fake.api_url))
    gate, started, bodies = threading.Event(), threading.Event(), []

    @app.command("/gpu")
    def slow_ack(ack: Ack, body: dict[str, Any]) -> None:
        started.set()
        gate.wait(10)
        bodies.append(body)
        ack()

    @app.view("slow_view")
    def slow_view(ack: Ack) -> None:
        gate.wait(10)
        ack()

    return Probe(app, store, gate, started, bodies)


def test_the_200_does_not_wait_for_the_ack_listener(probe: Probe) -> None:
    body = slash_command_body("queue", response_url="https://hooks.slack.invalid/commands/x")
    with serving(probe.app, probe.store) as endpoint:
        reply = endpoint.post(body)
        assert (reply.status, reply.body) == (200, "") and reply.seconds < 1.0
        assert probe.started.wait(5) and probe.bodies == []  # Bolt has it, its listener is still busy
        probe.gate.set()
        assert wait_until(lambda: probe.bodies)
    (received,) = probe.bodies
    assert (received["command"], received["text"]) == ("/gpu", "queue")


def test_acknowledged_requests_wait_for_a_pause_and_still_reach_bolt_at_shutdown(probe: Probe) -> None:
    probe.gate.set()
    with serving(probe.app, probe.store, hold_s=60) as endpoint:
        assert endpoint.post(slash_command_body("queue")).status == 200
        time.sleep(SETTLE_S)
        assert not probe.started.is_set()  # held: no pause of 60 s in arrivals yet
    (received,) = probe.bodies  # shutting down released it to Bolt, which ran before the close returned
    assert received["text"] == "queue"


def test_the_front_will_not_serve_without_a_signing_secret(probe: Probe) -> None:
    with pytest.raises(ValueError, match="signing secret"):
        HttpFront(probe.app, Replays(probe.store.claim), "127.0.0.1", 0, PATH)


def test_one_connection_carries_several_requests(probe: Probe) -> None:
    probe.gate.set()
    with serving(probe.app, probe.store) as endpoint:
        connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
        replies = [endpoint.post(slash_command_body(f"why {n}"), connection=connection) for n in (1, 2, 3)]
        connection.close()
        assert [(r.status, r.body) for r in replies] == [(200, "")] * 3
        assert wait_until(lambda: len(probe.bodies) >= 3)
    assert sorted(b["text"] for b in probe.bodies) == ["why 1", "why 2", "why 3"]


def test_other_paths_and_methods_are_refused_before_anything_is_read(probe: Probe) -> None:
    with serving(probe.app, probe.store) as endpoint:
        assert endpoint.post("", method="GET").status == 405
        assert endpoint.post(slash_command_body("queue"), path="/other").status == 404
    assert not probe.started.is_set()


def _head(body: bytes, *lines: str) -> bytes:
    signed = "".join(f"{k}: {v}\r\n" for k, v in signed_request(SECRET, body.decode()).items())
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{signed}" + "".join(f"{x}\r\n" for x in lines) + "\r\n"
    ).encode()


def _chunked(body: bytes, *, last: bool = True) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n" + (b"0\r\n\r\n" if last else b"")


def test_expect_100_continue_is_honoured_and_a_chunked_body_under_the_cap_is_read(probe: Probe) -> None:
    probe.gate.set()
    body = slash_command_body("queue").encode()
    with serving(probe.app, probe.store) as endpoint:
        continued = endpoint.raw(
            _head(body, f"Content-Length: {len(body)}", "Expect: 100-continue", "Connection: close") + body
        )
        chunked_body = slash_command_body("why 7").encode()
        chunked = endpoint.raw(
            _head(chunked_body, "Transfer-Encoding: chunked", "Connection: close") + _chunked(chunked_body)
        )
        assert wait_until(lambda: len(probe.bodies) == 2)
    assert continued.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert chunked.startswith(b"HTTP/1.1 200 OK\r\n")
    assert sorted(b["text"] for b in probe.bodies) == ["queue", "why 7"]


# -- the edge's limits, attacked by a peer without the signing secret ------------------------------


def test_a_body_declared_over_the_cap_is_refused_413_before_it_is_read(probe: Probe) -> None:
    """A megabyte declared (under the old 4 MB limit), a hundred bytes sent: the 413 comes at once,
    not after waiting for the rest, and the connection is closed."""
    with serving(probe.app, probe.store) as endpoint:
        declared = endpoint.raw(_head(b"x", f"Content-Length: {1024 * 1024}") + b"x" * 100)
        expected = endpoint.raw(_head(b"x", f"Content-Length: {1024 * 1024}", "Expect: 100-continue"))
    assert declared.startswith(b"HTTP/1.1 413 ")
    assert expected.startswith(b"HTTP/1.1 413 ") and b"100 Continue" not in expected
    assert not probe.started.is_set()


def test_a_chunked_body_is_read_only_up_to_the_cap(probe: Probe) -> None:
    cap = HttpEdgeSettings().max_body_bytes
    piece = b"x" * (cap // 2 + 1)
    with serving(probe.app, probe.store) as endpoint:
        answer = endpoint.raw(_head(b"x", "Transfer-Encoding: chunked") + _chunked(piece, last=False) * 3)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert not probe.started.is_set()


def test_a_body_that_never_arrives_is_answered_408(probe: Probe) -> None:
    with serving(probe.app, probe.store, edge=SHORT) as endpoint:
        answer = endpoint.raw(_head(b"x", "Content-Length: 100") + b"x" * 10)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert not probe.started.is_set()


def test_a_request_head_with_too_many_headers_is_refused(probe: Probe) -> None:
    body = slash_command_body("queue").encode()
    padding = [f"X-Padding-{n}: {'p' * 100}" for n in range(40)]
    with serving(probe.app, probe.store) as endpoint:
        answer = endpoint.raw(_head(body, f"Content-Length: {len(body)}", *padding) + body)
    assert answer.split(b" ", 2)[1] in (b"400", b"431")
    assert not probe.started.is_set()


def test_idle_and_trickling_connections_are_closed_after_the_idle_timeout(probe: Probe) -> None:
    probe.gate.set()
    with serving(probe.app, probe.store, edge=SHORT) as endpoint:
        silent, trickling, finished = endpoint.connect(), endpoint.connect(), endpoint.connect()
        trickling.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\n".encode())
        body = slash_command_body("queue").encode()
        finished.sendall(_head(body, f"Content-Length: {len(body)}") + body)
        assert finished.recv(65536).startswith(b"HTTP/1.1 200 OK")  # kept alive after its answer

        def trickle() -> bool:
            # A header line at a time never completes the head; the front stops listening.
            try:
                trickling.sendall(b"X-Slow: 1\r\n")
            except OSError:
                return True
            time.sleep(0.05)
            return False

        assert wait_until(trickle)
        for peer in (silent, trickling, finished):
            assert closed_by_front(peer)
            peer.close()
        assert wait_until(lambda: endpoint.front.connections.open == 0)


def test_the_connection_cap_closes_the_longest_idle_connection_and_slack_still_gets_in(probe: Probe) -> None:
    """Silent connections beyond the cap: each new one takes the slot of the one silent longest (once
    that one has had its grace to send a request); those with no slot to take are refused; a
    signed request still gets in."""
    probe.gate.set()
    cap = 8
    with serving(probe.app, probe.store, edge=HttpEdgeSettings(max_connections=cap)) as endpoint:
        oldest = [endpoint.connect() for _ in range(cap)]
        assert wait_until(lambda: endpoint.front.connections.open == cap)
        time.sleep(GRACE_S)
        newer = [endpoint.connect() for _ in range(3 * cap)]
        assert all(closed_by_front(peer) for peer in oldest)
        assert wait_until(lambda: endpoint.front.connections.replaced == cap)
        assert wait_until(lambda: endpoint.front.connections.refused == 2 * cap)  # none had its grace yet
        assert endpoint.front.connections.open == cap
        time.sleep(GRACE_S)
        reply = endpoint.post(slash_command_body("queue"))
        assert (reply.status, reply.body) == (200, "")
        assert wait_until(lambda: probe.bodies)
        assert endpoint.front.connections.open <= cap
        for peer in oldest + newer:
            peer.close()


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused_503(probe: Probe) -> None:
    """Busy = a request being answered (here: view submissions whose listener waits at the gate)."""
    body = view_submission_body("slow_view", {})
    with serving(probe.app, probe.store, edge=HttpEdgeSettings(max_connections=2)) as endpoint:
        with ThreadPoolExecutor(2) as peers:
            busy = [peers.submit(endpoint.post, body, timestamp=int(time.time()) - n) for n in (0, 1)]
            assert wait_until(lambda: endpoint.front.connections.open == 2)
            time.sleep(SETTLE_S)  # both requests are with Bolt now
            with endpoint.connect() as refused:
                assert received_until_closed(refused).startswith(b"HTTP/1.1 503 ")
            probe.gate.set()
            assert [f.result().status for f in busy] == [200, 200]
        assert endpoint.post(slash_command_body("queue")).status == 200


# -- answers, not only acks --------------------------------------------------------------------

BACKEND_S = 2.0
BURST = 100


def test_a_burst_of_slash_commands_is_answered_in_about_the_backends_time(
    store: Store, fake: FakeSlack
) -> None:
    """100 `/gpu queue` at once with a 2 s cluster, the default number of workers: all answered in a
    few rounds of the cluster's time (the bound is generous; bench/slack_ack.py prints the figure)."""
    store.map_identity(ALICE)
    # A cluster whose queue takes BACKEND_S to answer, as an overloaded slurmctld's would.
    app = make_door(store, fake, FakeBackend(delays={"queue": BACKEND_S})).app
    bodies = [
        slash_command_body("queue", user_id=ALICE.requester, response_url=fake.response_url(uuid4().hex))
        for _ in range(BURST)
    ]
    with serving(app, store) as endpoint, ThreadPoolExecutor(BURST) as peers:
        started = time.monotonic()
        replies = list(peers.map(endpoint.post, bodies))
        assert [r.status for r in replies] == [200] * BURST
        assert wait_until(lambda: len(fake.responses) >= BURST, within_s=60)
        answered_in = time.monotonic() - started
    assert answered_in < 15.0  # 8 workers took 25 s; 32 take about 4 rounds of 2 s


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
