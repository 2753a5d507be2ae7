"""HTTP mode's front door: acknowledge commands, clicks and events at once; Bolt does the rest after.

Why (issue 4): with 100 `/gpu` at once (bench/slack_ack.py), Bolt behind a threaded WSGI server
acked at p99 270-550 ms on the shared 2-core box. One ack measured alone: 12.9 ms over HTTP, of
which `app.dispatch` was 11.8 ms wall but 1.5 ms CPU: with `process_before_response=False` Bolt
runs the ack listener on its executor and polls for the ack every 10 ms (`time.sleep(0.01)` in
slack_bolt/listener/thread_runner.py); the CPU is its middleware chain and the deep copy of the
request for each lazy listener, plus wsgiref's parsing and a thread per connection, all under one
interpreter lock. Verifying the signature alone takes 8 µs. This front: ~1 ms per ack alone, and
p99 16-35 ms for the burst of 100 (a server that only answers 200 measured p99 7-13 ms).

So for the requests whose answer is an empty 200 whatever the listener does, this front answers
itself: a slash command, a `block_actions` click and an `event_callback` are read, their signature
checked exactly as Bolt checks it (`slack_sdk.signature.SignatureVerifier`: HMAC-SHA256 over
`v0:{ts}:{body}`, |now − ts| ≤ 300 s, else 401 and nothing queued), answered `200` with an empty
body, and then handed whole to `app.dispatch` on a small pool of its own. Bolt's own ack for them
is dropped; our listeners reply through respond/response_url/chat.* anyway. A retried event keeps
its `X-Slack-Retry-Num` header and its event id, which the store claims once (conversation.py).

Everything that may need an answer in the response goes through `app.dispatch` before answering,
as before: url_verification, ssl_check, view_submission (`response_action: errors`),
block_suggestion, shortcuts and anything unknown. Without a signing secret the front cannot verify
anything, so then every request goes that way.

The server is asyncio on one thread, speaking just enough HTTP/1.1 for Slack: bodies with a
Content-Length (Slack never chunks; chunked gets 501), keep-alive, `Expect: 100-continue`. The
event loop never runs Bolt: in-band answers run on their own small pool, so a burst of deferred
dispatches cannot hold a view submission's errors past Slack's 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote_plus

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger("concierge.slack")

# A connection from Slack that sends nothing for this long is closed (Slack reconnects).
IDLE_TIMEOUT_S = 75.0
HEAD_LIMIT_BYTES = 64 * 1024  # request line and headers
BODY_LIMIT_BYTES = 4 * 1024 * 1024  # Slack's biggest payloads (modal states) are far below this
# Many people typing /gpu at once arrive as simultaneous connections; the kernel caps this anyway.
BACKLOG = 1024
DEFERRED_WORKERS = 4  # run app.dispatch after the ack; each takes ~10 ms wall, ~1.5 ms CPU
# Acks first: acknowledged requests wait for a pause this long in arrivals, but never longer than
# LONGEST_HOLD_S, before they go to Bolt (see HeldForLull).
QUIET_S = 0.02
LONGEST_HOLD_S = 0.5
INLINE_WORKERS = 4  # run app.dispatch before answering (view submissions and the like)
_EMPTY_ACK_PAYLOADS = frozenset({"block_actions"})
_EMPTY_ACK_EVENTS = frozenset({"event_callback"})
_REFUSED_BODY = json.dumps({"error": "invalid request"})  # what Bolt answers to a bad signature
_JSON = "application/json"
_TEXT = "text/plain;charset=utf-8"

Headers = dict[str, list[str]]


class _Unreadable(Exception):
    """The request cannot be read as HTTP/1.1 this front speaks; answered with `status`, then closed."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    query: str
    version: str
    headers: Headers
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.1":
            return connection != "close"
        return connection == "keep-alive"


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: str = ""
    headers: dict[str, Sequence[str]] = field(default_factory=dict)

    def encode(self, *, keep_alive: bool) -> bytes:
        payload = self.body.encode()
        lines = [f"HTTP/1.1 {self.status} {_phrase(self.status)}", f"Content-Length: {len(payload)}"]
        for name, values in self.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                lines.extend(f"{name}: {value}" for value in values)
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


EMPTY_ACK = HttpReply(200)


@dataclass(frozen=True)
class Acknowledged:
    """A verified request Slack already has its 200 for, on its way to `app.dispatch`."""

    request: HttpRequest
    text: str


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
    fields = dict(part.partition("=")[::2] for part in body.split("&"))
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


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> HttpRequest | None:
    """The next request on a connection, or None when the peer closed it between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            raise _Unreadable(HTTPStatus.BAD_REQUEST) from e
        return None
    except asyncio.LimitOverrunError as e:
        raise _Unreadable(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE) from e
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Unreadable(HTTPStatus.BAD_REQUEST)
    method, target, version = parts
    headers: Headers = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise _Unreadable(HTTPStatus.BAD_REQUEST)
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    path, _, query = target.partition("?")
    request = HttpRequest(method, path, query, version, headers)
    if request.header("transfer-encoding") is not None:
        raise _Unreadable(HTTPStatus.NOT_IMPLEMENTED)
    try:
        length = int(request.header("content-length") or "0")
    except ValueError as e:
        raise _Unreadable(HTTPStatus.BAD_REQUEST) from e
    if length < 0:
        raise _Unreadable(HTTPStatus.BAD_REQUEST)
    if length > BODY_LIMIT_BYTES:
        raise _Unreadable(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if length and (request.header("expect") or "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await reader.readexactly(length) if length else b""
    return HttpRequest(method, path, query, version, headers, body)


class HttpFront:
    """Serves `app` on host:port like socketserver's servers: serve_forever, shutdown, server_close.

    The socket is bound at construction, so `server_port` is known before serving (port 0 = any).
    """

    def __init__(
        self,
        app: App,
        host: str,
        port: int,
        path: str = "/slack/events",
        *,
        signing_secret: str | None = None,
        verifier: SignatureVerifier | None = None,
        quiet_s: float = QUIET_S,
        longest_hold_s: float = LONGEST_HOLD_S,
    ) -> None:
        self._app = app
        self._path = path
        # A verifier may be passed with its own clock (tests); otherwise one from the secret.
        self._verifier = verifier or (SignatureVerifier(signing_secret) if signing_secret else None)
        self._held = HeldForLull(self._dispatch_later, quiet_s, longest_hold_s)
        self._socket = socket.create_server((host, port), backlog=BACKLOG)
        self._deferred = ThreadPoolExecutor(DEFERRED_WORKERS, thread_name_prefix="slack-dispatch")
        self._inline = ThreadPoolExecutor(INLINE_WORKERS, thread_name_prefix="slack-inline")
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._stopped = threading.Event()

    @property
    def server_port(self) -> int:
        return int(self._socket.getsockname()[1])

    def serve_forever(self) -> None:
        """Blocks, answering requests until `shutdown()` is called from another thread."""
        try:
            asyncio.run(self._serve())
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stops `serve_forever` and waits until it has returned (at once when it never ran)."""
        with self._lock:
            self._stopping = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
            self._stopped.wait()

    def server_close(self) -> None:
        """Closes the socket and lets the requests already acknowledged reach Bolt."""
        self._socket.close()
        self._deferred.shutdown(wait=True)
        self._inline.shutdown(wait=True)

    async def _serve(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            if self._stopping:
                return
            self._loop, self._stop = asyncio.get_running_loop(), stop
        server = await asyncio.start_server(self._converse, sock=self._socket, limit=HEAD_LIMIT_BYTES)
        try:
            await stop.wait()
        finally:
            server.close()
            self._held.release_all()  # Slack has their 200s: they must still reach Bolt
            with self._lock:
                self._loop = self._stop = None

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests answered in order until the peer closes it or goes quiet."""
        try:
            while True:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    request = await read_request(reader, writer)
                if request is None:
                    return
                reply = await self._answer(request)
                writer.write(reply.encode(keep_alive=request.keep_alive))
                await writer.drain()
                if not request.keep_alive:
                    return
        except _Unreadable as e:
            await _refuse(writer, e.status)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass  # the peer went away or went quiet: nothing to answer
        except Exception:
            log.exception("the Slack HTTP front failed on a request")
            await _refuse(writer, HTTPStatus.INTERNAL_SERVER_ERROR)
        finally:
            writer.close()

    async def _answer(self, request: HttpRequest) -> HttpReply:
        loop = asyncio.get_running_loop()
        self._held.arrived(loop)
        if request.method != "POST" or request.path != self._path:
            return HttpReply(404, "Not Found", {"content-type": [_TEXT]})
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            return HttpReply(400, "the body is not UTF-8", {"content-type": [_TEXT]})
        if self._verifier is not None and answered_by_empty_ack(text):
            if not self._signed_by_slack(request, text):
                return HttpReply(401, _REFUSED_BODY, {"content-type": [_JSON]})
            self._held.hold(Acknowledged(request, text), loop)
            return EMPTY_ACK
        return await loop.run_in_executor(self._inline, self._dispatch_now, request, text)

    def _signed_by_slack(self, request: HttpRequest, text: str) -> bool:
        assert self._verifier is not None
        timestamp = request.header("x-slack-request-timestamp")
        try:
            return self._verifier.is_valid(text, timestamp, request.header("x-slack-signature"))
        except ValueError:  # a timestamp that is not a number
            return False

    def _dispatch_now(self, request: HttpRequest, text: str) -> HttpReply:
        try:
            response = self._app.dispatch(_bolt_request(request, text))
        except Exception:
            log.exception("Bolt failed on a Slack request")
            return HttpReply(500, "Internal Server Error", {"content-type": [_TEXT]})
        return _reply_of(response)

    def _dispatch_later(self, acknowledged: Acknowledged) -> None:
        self._deferred.submit(self._dispatch_acknowledged, acknowledged)

    def _dispatch_acknowledged(self, acknowledged: Acknowledged) -> None:
        try:
            response = self._app.dispatch(_bolt_request(acknowledged.request, acknowledged.text))
        except Exception:
            log.exception("Bolt failed on a Slack request the front had acknowledged")
            return
        if response.status != 200:
            # e.g. 404: no listener matched. Slack already has its 200; only the log can tell.
            log.warning("Bolt answered %s to an acknowledged request: %s", response.status, response.body)


def _bolt_request(request: HttpRequest, text: str) -> BoltRequest:
    headers: dict[str, str | Sequence[str]] = dict(request.headers)
    return BoltRequest(body=text, query=request.query, headers=headers)


def _reply_of(response: BoltResponse) -> HttpReply:
    return HttpReply(response.status, response.body, dict(response.headers))


async def _refuse(writer: asyncio.StreamWriter, status: HTTPStatus) -> None:
    writer.write(HttpReply(status, status.phrase, {"content-type": [_TEXT]}).encode(keep_alive=False))
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
