"""A fake Slack Web API on 127.0.0.1 for the real `slack_sdk.WebClient(base_url=...)`.

Modelled on bolt-python's own test mock server: a threaded http.server answers Slack-shaped JSON,
so the code under test keeps its real client, retry handlers and upload path. Every call is
recorded (method, merged query/form/JSON params, headers) because the bot posts from background
threads and tests assert on what reached "Slack". Params that Slack carries as JSON text in form
bodies (blocks, view, files...) are decoded, so a test reads the same shape whichever way the
client sent them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.slack_fake.inbound import DEFAULT_APP_ID, DEFAULT_BOT_ID, DEFAULT_BOT_USER_ID, DEFAULT_TEAM_ID
from tests.slack_fake.socket_server import FakeSocketModeServer

_JSON_TEXT_PARAMS = ("blocks", "attachments", "view", "files", "metadata")
# Slack lets a response_url be used five times (within 30 minutes).
RESPONSE_URL_USES = 5

Answer = dict[str, Any]


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call as the fake received it; `status` is what the fake answered (200 or 429)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 200

    @property
    def token(self) -> str | None:
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Bearer "):
            return authorization.removeprefix("Bearer ")
        token = self.params.get("token")
        return token if isinstance(token, str) else None


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST to a response_url the fake handed out."""

    token: str
    body: dict[str, Any]


@dataclass
class FakeUser:
    user_id: str
    name: str
    email: str
    tz: str = "UTC"
    real_name: str = ""
    is_bot: bool = False

    def profile(self) -> dict[str, Any]:
        real_name = self.real_name or self.name
        return {"email": self.email, "real_name": real_name, "display_name": self.name}

    def as_slack(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name or self.name,
            "deleted": False,
            "is_bot": self.is_bot,
            "tz": self.tz,
            "tz_offset": 0,
            "profile": self.profile(),
        }


@dataclass
class _RateLimit:
    remaining: int
    retry_after: int


@dataclass
class _State:
    calls: list[RecordedCall] = field(default_factory=list)
    responses: list[ResponseUrlPost] = field(default_factory=list)
    response_url_uses: dict[str, int] = field(default_factory=dict)
    users: dict[str, FakeUser] = field(default_factory=dict)
    rate_limits: dict[str, _RateLimit] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)  # method → errors still to answer
    uploads: dict[str, bytes] = field(default_factory=dict)
    upload_names: dict[str, str] = field(default_factory=dict)


def _decode_json_text(params: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(params)
    for key in _JSON_TEXT_PARAMS:
        value = decoded.get(key)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            # Malformed text is left as sent, so the test sees what the client really posted.
            with contextlib.suppress(json.JSONDecodeError):
                decoded[key] = json.loads(value)
    return decoded


class FakeSlack:
    """The fake Web API plus its Socket Mode server. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        team_id: str = DEFAULT_TEAM_ID,
        bot_user_id: str = DEFAULT_BOT_USER_ID,
        bot_id: str = DEFAULT_BOT_ID,
        app_id: str = DEFAULT_APP_ID,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.socket = FakeSocketModeServer(app_id=app_id)
        # Sent as Slack's `x-oauth-scopes` header on Web API answers (the token's granted scopes).
        self.oauth_scopes: tuple[str, ...] | None = None
        self._state = _State()
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._methods: dict[str, Callable[[dict[str, Any], RecordedCall], Answer]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": lambda params, call: {"ok": True, "message_ts": self._next_ts()},
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.open": self._conversations_open,
            "views.open": self._views,
            "views.update": self._views,
            "views.push": self._views,
            "views.publish": self._views,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.profile.get": self._users_profile_get,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL; the Web API lives under `f"{url}/api/"`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What to pass as `WebClient(base_url=...)`."""
        return f"{self.url}/api/"

    def start(self) -> FakeSlack:
        self._thread.start()
        self.socket.start()
        return self

    def stop(self) -> None:
        self.socket.stop()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests arrange ----------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        email: str,
        *,
        tz: str = "UTC",
        real_name: str = "",
        is_bot: bool = False,
    ) -> None:
        with self._changed:
            self._state.users[user_id] = FakeUser(user_id, name, email, tz, real_name, is_bot)

    def fail(self, method: str, times: int = 1, error: str = "fatal_error") -> None:
        """Answer the next `times` calls to `method` with `{"ok": false, "error": error}` (HTTP 200,
        as Slack does for errors that are not rate limits)."""
        with self._changed:
            self._state.failures.setdefault(method, []).extend([error] * times)

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next `times` calls to `method` with 429, Retry-After and `ratelimited`."""
        with self._changed:
            self._state.rate_limits[method] = _RateLimit(times, retry_after)

    def response_url(self, token: str) -> str:
        """A response_url served by the fake; POSTs to it land in `responses`."""
        return f"{self.url}/response/{token}"

    # -- what tests inspect ----------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every Web API call, rate-limited ones included (status 429), oldest first."""
        with self._changed:
            return list(self._state.calls)

    @property
    def responses(self) -> list[ResponseUrlPost]:
        with self._changed:
            return list(self._state.responses)

    @property
    def uploads(self) -> dict[str, bytes]:
        """Uploaded file contents by file id (from the files_upload_v2 POST)."""
        with self._changed:
            return dict(self._state.uploads)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The params of each call to `method` that the fake answered (not rate-limited)."""
        with self._changed:
            return [call.params for call in self._state.calls if call.method == method and call.status == 200]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until `count` answered calls to `method` arrived; returns their params."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            if not arrived:
                seen = [call.method for call in self._state.calls]
                raise AssertionError(
                    f"expected {count} call(s) to {method} within {timeout} s, got "
                    f"{len(self.calls_to(method))}; all calls so far: {seen}"
                )
            return self.calls_to(method)

    def wait_for_responses(self, count: int = 1, timeout: float = 5.0) -> list[ResponseUrlPost]:
        """Block until `count` POSTs to response_urls arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._state.responses) >= count, timeout):
                raise AssertionError(
                    f"expected {count} response_url post(s) within {timeout} s, "
                    f"got {len(self._state.responses)}: {self._state.responses}"
                )
            return list(self._state.responses)

    # -- request handling (called from server threads) -------------------------------------

    def _answer_api(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> tuple[int, Answer]:
        with self._changed:
            limit = self._state.rate_limits.get(method)
            limited = limit is not None and limit.remaining > 0
            call = RecordedCall(method, _decode_json_text(params), headers, 429 if limited else 200)
            self._state.calls.append(call)
            self._changed.notify_all()
            if limit is not None and limited:
                limit.remaining -= 1
                return limit.retry_after, {"ok": False, "error": "ratelimited"}
            failures = self._state.failures.get(method)
            if failures and not limited:
                return 0, {"ok": False, "error": failures.pop(0)}
        if call.token is None:
            return 0, {"ok": False, "error": "not_authed"}
        handler = self._methods.get(method)
        if handler is None:
            return 0, {"ok": False, "error": "unknown_method"}
        return 0, handler(call.params, call)

    def _answer_response_url(self, token: str, body: dict[str, Any]) -> tuple[int, str]:
        with self._changed:
            uses = self._state.response_url_uses.get(token, 0)
            if uses >= RESPONSE_URL_USES:
                return 404, "used_url"
            self._state.response_url_uses[token] = uses + 1
            self._state.responses.append(ResponseUrlPost(token, body))
            self._changed.notify_all()
        return 200, "ok"

    def _answer_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        with self._changed:
            if file_id not in self._state.upload_names:
                return 404, "unknown upload"
            self._state.uploads[file_id] = data
        return 200, f"OK - {len(data)}"

    # -- Web API methods -------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._clock):06d}"

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}"

    def _auth_test(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": "concierge",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _channel_for(self, channel: str) -> str:
        # Posting to a user id lands in the DM with that user, as on Slack.
        return f"D{channel[1:]}" if channel.startswith(("U", "W")) else channel

    def _message(self, params: dict[str, Any], ts: str) -> dict[str, Any]:
        message = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "text": params.get("text", ""),
            "ts": ts,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if key in params:
                message[key] = params[key]
        return message

    def _chat_post_message(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        if "channel" not in params:
            return {"ok": False, "error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks") and not params.get("attachments"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        channel = self._channel_for(str(params["channel"]))
        return {"ok": True, "channel": channel, "ts": ts, "message": self._message(params, ts)}

    def _chat_update(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        if "channel" not in params or "ts" not in params:
            return {"ok": False, "error": "invalid_arguments"}
        ts = str(params["ts"])
        return {
            "ok": True,
            "channel": params["channel"],
            "ts": ts,
            "text": params.get("text", ""),
            "message": self._message(params, ts),
        }

    def _chat_get_permalink(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        channel, ts = str(params.get("channel", "")), str(params.get("message_ts", ""))
        permalink = f"https://fake.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _conversations_open(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        users = str(params.get("users", ""))
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        first = users.split(",")[0]
        return {"ok": True, "channel": {"id": self._channel_for(first), "is_im": "," not in users}}

    def _views(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        view = params.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = str(params.get("view_id") or self._next_id("V"))
        answered = {**view, "id": view_id, "team_id": self.team_id, "state": {"values": {}}}
        answered.setdefault("hash", f"{time.time():.6f}.fake")
        return {"ok": True, "view": answered}

    def _users_info(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        user = self._state.users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user.as_slack(self.team_id)}

    def _users_lookup_by_email(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        email = str(params.get("email", "")).lower()
        for user in list(self._state.users.values()):
            if user.email.lower() == email:
                return {"ok": True, "user": user.as_slack(self.team_id)}
        return {"ok": False, "error": "users_not_found"}

    def _users_profile_get(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        user = self._state.users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "profile": user.profile()}

    def _files_get_upload_url(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        if not params.get("filename") or not params.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = self._next_id("F")
        with self._changed:
            self._state.upload_names[file_id] = str(params["filename"])
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        answered = []
        with self._changed:
            for entry in files:
                file_id = str(entry.get("id"))
                if file_id not in self._state.uploads:
                    return {"ok": False, "error": "file_not_found"}
                name = self._state.upload_names[file_id]
                answered.append(
                    {
                        "id": file_id,
                        "name": name,
                        "title": entry.get("title") or name,
                        "size": len(self._state.uploads[file_id]),
                        "permalink": f"https://fake.slack.com/files/{self.bot_user_id}/{file_id}/{name}",
                    }
                )
        return {"ok": True, "files": answered}

    def _apps_connections_open(self, params: dict[str, Any], call: RecordedCall) -> Answer:
        if not (call.token or "").startswith("xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        return {"ok": True, "url": self.socket.url}


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean; calls are recorded instead

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if parts.path.startswith("/api/"):
                params: dict[str, Any] = dict(parse_qsl(parts.query))
                params.update(self._body_params(body))
                retry_after, answer = fake._answer_api(
                    parts.path.removeprefix("/api/"), params, dict(self.headers)
                )
                self._send(
                    429 if retry_after or answer.get("error") == "ratelimited" else 200,
                    json.dumps(answer),
                    retry_after,
                )
            elif parts.path.startswith("/response/"):
                status, text = fake._answer_response_url(
                    parts.path.removeprefix("/response/"), self._json(body)
                )
                self._send(status, text)
            elif parts.path.startswith("/upload/"):
                status, text = fake._answer_upload(parts.path.removeprefix("/upload/"), body)
                self._send(status, text)
            else:
                self._send(404, "not found")

        def _body_params(self, body: bytes) -> dict[str, Any]:
            if not body:
                return {}
            if "json" in self.headers.get("Content-Type", ""):
                return self._json(body)
            return dict(parse_qsl(body.decode()))

        def _json(self, body: bytes) -> dict[str, Any]:
            try:
                parsed = json.loads(body or b"{}")
            except json.JSONDecodeError:
                return {"unparsable_body": body.decode(errors="replace")}
            return parsed if isinstance(parsed, dict) else {"body": parsed}

        def _send(self, status: int, text: str, retry_after: int | None = None) -> None:
            data = text.encode()
            self.send_response(status)
            is_json = text.startswith("{")
            self.send_header("Content-Type", "application/json; charset=utf-8" if is_json else "text/plain")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", str(retry_after or 0))
            if fake.oauth_scopes is not None and self.path.startswith("/api/"):
                self.send_header("x-oauth-scopes", ",".join(fake.oauth_scopes))
            self.end_headers()
            self.wfile.write(data)

    return Handler
