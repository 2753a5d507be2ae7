"""HTTP mode's front door, on aiohttp: limits first, Slack's signature next, the ack, then Bolt.

Why aiohttp (issue 11): the hand-written HTTP/1.1 parsing this replaced read up to 4 MB of a body
nobody had signed before checking the signature, and capped nothing: 260 connections held 1.12 GB,
~1,000 idle ones used up the file descriptors. aiohttp (3.14, maintained, its parser is llhttp's)
brings the protocol; what Slack's door needs on top of it is here, in this order:

1. The body is capped (`HttpEdgeSettings.max_body_bytes`, 64 KiB; Slack's payloads are a few KiB):
   a declared Content-Length over it is answered 413 before one byte of the body is read (and an
   `Expect: 100-continue` gets the 413 instead of the 100), and a chunked body is read only up to it
   (aiohttp's `client_max_size`). The connection is then closed: `lingering_time=0`, so aiohttp does
   not read and discard the rest. The whole body must arrive within `body_timeout_s` (else 408).
2. A request head must arrive within `idle_timeout_s` of the connection opening or of its last
   answer (aiohttp's keep-alive timer, which starts when the connection opens); heads are small
   (32 headers of at most 4 KiB). Open connections are capped (bot/slack/http_connections.py).
3. Slack's signature is checked (`slack_sdk.signature.SignatureVerifier`: HMAC-SHA256 over
   `v0:{ts}:{body}`, |now − ts| ≤ 300 s) before anything else looks at the body: otherwise 401,
   Bolt's body, and nothing runs. An unsigned `ssl_check` (Slack's certificate probe, which Bolt
   answers without checking) gets an empty 200 and nothing else.
4. A request already seen is answered an empty 200 and nothing runs (bot/slack/replays.py: a
   memory here, the store's once-only claim across replicas).

Ack first (issue 4): a slash command, a `block_actions` click and an `event_callback` need nothing
but an empty 200 from us, whatever the listener does; so the front answers them itself and hands
them to `app.dispatch` afterwards, on a small pool of its own (Bolt's ack path cost ~13 ms of one
interpreter lock each). Bolt's own ack for them is dropped; our listeners reply through
respond/response_url/chat.* anyway. They wait for a lull in arrivals first (`HeldForLull`), so that
a burst's acks do not queue behind its dispatches. Everything that may need an answer in the
response (url_verification, a view submission's `response_action: errors`, block_suggestion,
shortcuts, anything unknown) goes through `app.dispatch` before it is answered, on another small
pool, so a burst of deferred dispatches cannot hold a view submission's errors past Slack's 3 s.

Bolt stays the synchronous `App` (its listeners, the store and the backends are synchronous); the
event loop never runs it. slack_bolt's aiohttp adapter is used for the answers Bolt gives.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote_plus

from aiohttp import HttpVersion11, web
from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_sdk.signature import SignatureVerifier

from bot.aio_server import AioServer, Stop
from bot.slack.http_connections import CappedConnections
from bot.slack.http_settings import HttpEdgeSettings
from bot.slack.replays import Replays, request_key

log = logging.getLogger("concierge.slack")

# Slack's request heads are ~15 short headers; aiohttp's defaults (128 × 8 KiB) would let one
# unauthenticated connection park a megabyte in the parser.
MAX_HEADERS = 32
MAX_HEADER_BYTES = 4096  # the request line, and each header
SHUTDOWN_S = 5.0  # how long stopping waits for answers in progress
DEFERRED_WORKERS = 4  # run app.dispatch after the ack; each takes ~10 ms wall, ~1.5 ms CPU
# Acks first: acknowledged requests wait for a pause this long in arrivals, but never longer than
# LONGEST_HOLD_S, before they go to Bolt (see HeldForLull).
QUIET_S = 0.02
LONGEST_HOLD_S = 0.5
INLINE_WORKERS = 4  # run app.dispatch before answering (view submissions and the like)
CLAIMED_BY = "slack-http-front"  # the actor of the store's claim on each signed request
_EMPTY_ACK_PAYLOADS = frozenset({"block_actions"})
_EMPTY_ACK_EVENTS = frozenset({"event_callback"})
_REFUSED_BODY = json.dumps({"error": "invalid request"})  # what Bolt answers to a bad signature

Headers = dict[str, list[str]]


@dataclass(frozen=True)
class Acknowledged:
    """A verified request, on its way to `app.dispatch`; `key` names it for the once-only claim."""

    text: str
    query: str
    headers: Headers
    key: str

    def to_bolt(self) -> BoltRequest:
        headers: dict[str, str | Sequence[str]] = dict(self.headers)
        return BoltRequest(body=self.text, query=self.query, headers=headers)


class HeldForLull:
    """Acknowledged requests wait on the event loop for a pause in arrivals, then go to Bolt together.

    Acks first: a dispatch holds the interpreter lock for ~1.5 ms (Bolt's middleware, the deep copy
    of the request for the lazy listener); run between the acks of a burst, and with a pool thread
    woken per request, 100 of them put the burst's p99 at 29-137 ms (median 85) instead of 17-27.
    So nothing leaves the loop until no request came for `quiet_s` (the work starts that much
    later), or the oldest held one has waited `longest_s` (requests that never pause).
    Used from the event loop's thread only.
    """

    def __init__(self, release: Callable[[Acknowledged], object], quiet_s: float, longest_s: float) -> None:
        self._release = release
        self._quiet_s = quiet_s
        self._longest_s = longest_s
        self._held: list[Acknowledged] = []
        self._last_arrival = float("-inf")
        self._oldest = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def arrived(self, loop: asyncio.AbstractEventLoop) -> None:
        self._last_arrival = loop.time()

    def hold(self, acknowledged: Acknowledged, loop: asyncio.AbstractEventLoop) -> None:
        if not self._held:
            self._oldest = loop.time()
        self._held.append(acknowledged)
        if self._timer is None:
            self._timer = loop.call_at(self._due(), self._release_when_due, loop)

    def release_all(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        held, self._held = self._held, []
        for acknowledged in held:
            self._release(acknowledged)

    def _due(self) -> float:
        return min(self._last_arrival + self._quiet_s, self._oldest + self._longest_s)

    def _release_when_due(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        if loop.time() < self._due():  # requests kept coming: look again at the new due time
            self._timer = loop.call_at(self._due(), self._release_when_due, loop)
        else:
            self.release_all()


def answered_by_empty_ack(body: str) -> bool:
    """Whether Slack needs nothing but an empty 200 for this body: a slash command, a click, an event.

    Decided on the same fields Bolt decides on (`command`, `payload.type`, `type`); an ssl_check
    (answered by Bolt without a signature) and anything unrecognised is not.
    """
    if body.lstrip().startswith("{"):
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            return False
        return isinstance(document, dict) and document.get("type") in _EMPTY_ACK_EVENTS
    fields = _form_fields(body)
    if "ssl_check" in fields:
        return False
    if "command" in fields:
        return True
    if "payload" not in fields:
        return False
    try:
        payload = json.loads(unquote_plus(fields["payload"]))
    except json.JSONDecodeError:
        return False
    return isinstance(payload, dict) and payload.get("type") in _EMPTY_ACK_PAYLOADS


def _form_fields(body: str) -> dict[str, str]:
    return dict(part.partition("=")[::2] for part in body.split("&"))


class HttpFront(AioServer):
    """Serves `app` on host:port like socketserver's servers (bot/aio_server.py)."""

    def __init__(
        self,
        app: App,
        replays: Replays,
        host: str,
        port: int,
        path: str = "/slack/events",
        *,
        signing_secret: str | None = None,
        verifier: SignatureVerifier | None = None,
        edge: HttpEdgeSettings | None = None,
        quiet_s: float = QUIET_S,
        longest_hold_s: float = LONGEST_HOLD_S,
    ) -> None:
        # A verifier may be passed with its own clock (tests); otherwise one from the secret.
        if verifier is None and not signing_secret:
            raise ValueError("the HTTP front needs Slack's signing secret: it checks every request")
        self._verifier = verifier or SignatureVerifier(str(signing_secret))
        self._app = app
        self._replays = replays
        self._path = path
        self._edge = edge or HttpEdgeSettings()
        self.connections = CappedConnections(self._edge.max_connections)
        self._held = HeldForLull(self._dispatch_later, quiet_s, longest_hold_s)
        super().__init__(host, port, backlog=self._edge.backlog)
        self._deferred = ThreadPoolExecutor(DEFERRED_WORKERS, thread_name_prefix="slack-dispatch")
        self._inline = ThreadPoolExecutor(INLINE_WORKERS, thread_name_prefix="slack-inline")

    def server_close(self) -> None:
        """Closes the socket and lets the requests already acknowledged reach Bolt."""
        super().server_close()
        self._deferred.shutdown(wait=True)
        self._inline.shutdown(wait=True)

    async def _listen(self, sock: socket.socket) -> Stop:
        site = web.Application(client_max_size=self._edge.max_body_bytes)
        site.router.add_post(self._path, self._answer, expect_handler=self._expect)
        runner = web.AppRunner(
            site,
            access_log=None,
            keepalive_timeout=self._edge.idle_timeout_s,
            lingering_time=0,  # a body left unread is not read and thrown away: the connection closes
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
            max_headers=MAX_HEADERS,
            shutdown_timeout=SHUTDOWN_S,
        )
        await runner.setup()
        assert runner.server is not None  # set by setup()
        factory = self.connections.protocol_factory(runner.server)
        loop = asyncio.get_running_loop()
        listening = await loop.create_server(factory, sock=sock, backlog=self._edge.backlog)

        async def stop() -> None:
            listening.close()
            self._held.release_all()  # Slack has their 200s: they must still reach Bolt
            await runner.cleanup()

        return stop

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue`: a body over the cap gets its 413 instead of the go-ahead."""
        if (refused := self._over_cap(request)) is not None:
            return refused
        if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # what aiohttp's own handler does: the answer starts after
            return None
        return _closing(web.Response(status=417, text="only Expect: 100-continue is understood"))

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        self._held.arrived(loop)
        transport = request.transport
        if transport is not None:
            self.connections.answering(transport)
        try:
            return await self._answer_checked(request, loop)
        finally:
            if transport is not None:
                self.connections.answered(transport)

    async def _answer_checked(
        self, request: web.Request, loop: asyncio.AbstractEventLoop
    ) -> web.StreamResponse:
        if (refused := self._over_cap(request)) is not None:
            return refused
        try:
            async with asyncio.timeout(self._edge.body_timeout_s):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except TimeoutError:
            return _closing(web.Response(status=408, text="the request body did not arrive in time"))
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if timestamp is None or signature is None or not self._signed_by_slack(body, timestamp, signature):
            if _is_ssl_check(body):
                return web.Response(status=200)
            return web.Response(status=401, text=_REFUSED_BODY, content_type="application/json")
        if request.transport is not None:
            self.connections.signed(request.transport)
        key = request_key(timestamp, signature)
        if self._replays.seen_here(key):
            log.info("a Slack request was sent again (timestamp %s): answered, not acted on", timestamp)
            return web.Response(status=200)
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return web.Response(status=400, text="the body is not UTF-8")
        headers = {name.lower(): request.headers.getall(name) for name in request.headers}
        acknowledged = Acknowledged(text, request.query_string, headers, key)
        if answered_by_empty_ack(text):
            self._held.hold(acknowledged, loop)
            return web.Response(status=200)
        response = await loop.run_in_executor(self._inline, self._dispatch_now, acknowledged)
        return await to_aiohttp_response(response)

    def _over_cap(self, request: web.Request) -> web.StreamResponse | None:
        declared = request.content_length
        return self._too_large() if declared is not None and declared > self._edge.max_body_bytes else None

    def _too_large(self) -> web.StreamResponse:
        limit = self._edge.max_body_bytes
        return _closing(web.Response(status=413, text=f"the body is over this endpoint's {limit} bytes"))

    def _signed_by_slack(self, body: bytes, timestamp: str, signature: str) -> bool:
        try:
            return self._verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False

    def _dispatch_now(self, acknowledged: Acknowledged) -> BoltResponse:
        try:
            if not self._replays.first_anywhere(acknowledged.key, CLAIMED_BY):
                log.info("a Slack request another replica took was sent here too: not acted on")
                return BoltResponse(status=200, body="")
            return self._app.dispatch(acknowledged.to_bolt())
        except Exception:
            log.exception("Bolt failed on a Slack request")
            return BoltResponse(status=500, body="Internal Server Error")

    def _dispatch_later(self, acknowledged: Acknowledged) -> None:
        self._deferred.submit(self._dispatch_acknowledged, acknowledged)

    def _dispatch_acknowledged(self, acknowledged: Acknowledged) -> None:
        try:
            if not self._replays.first_anywhere(acknowledged.key, CLAIMED_BY):
                log.info("a Slack request another replica took was sent here too: not acted on")
                return
            response = self._app.dispatch(acknowledged.to_bolt())
        except Exception:
            log.exception("Bolt failed on a Slack request the front had acknowledged")
            return
        if response.status != 200:
            # e.g. 404: no listener matched. Slack already has its 200; only the log can tell.
            log.warning("Bolt answered %s to an acknowledged request: %s", response.status, response.body)


def _is_ssl_check(body: bytes) -> bool:
    try:
        return _form_fields(body.decode()).get("ssl_check") == "1"
    except UnicodeDecodeError:
        return False


def _closing(response: web.Response) -> web.Response:
    """An answer after which the connection closes: the rest of the request was never read."""
    response.force_close()
    return response
