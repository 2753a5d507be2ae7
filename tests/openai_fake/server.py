"""A fake vLLM OpenAI server on 127.0.0.1 for the real `openai` client (through LangChain).

It speaks the wire format vLLM speaks (`POST /v1/chat/completions`, `GET /v1/models`, errors as
`{"error": {"message", "type", "param", "code"}}`), records every request, and checks each chat
completion the way our design needs it checked, refusing with HTTP 400 and a recorded problem
(where the real vLLM would often answer anyway, which is exactly why the fake must not):

- `model` is the served name (otherwise 404, as vLLM answers for an unknown model);
- `messages` is a list of {role, content} with string content;
- `response_format` is `{"type": "json_schema", "json_schema": {"name", "schema"}}`, the schema an
  object with `additionalProperties: false`, every property required, and (when the test says)
  exactly the expected properties;
- no `guided_json` (or any `guided_*`): vLLM ≥ 0.12 silently ignores it, so sending it means the
  output is not constrained at all;
- not streamed, and a token limit is set.

Replies are scripted (`script(...)`), one per completion in order; `default` answers when the
script is empty (None: HTTP 500 saying no reply was scripted, so a test never passes by accident).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from tests.openai_fake.replies import Delayed, EchoHint, HttpError, RawText, Reply, Structured

DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"
_ROLES = frozenset({"system", "user", "assistant", "developer"})


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it, and the status it answered."""

    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]  # names lowercased
    status: int

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or [])

    @property
    def schema(self) -> dict[str, Any]:
        response_format = (self.body or {}).get("response_format") or {}
        if response_format.get("type") == "json_object":  # llama.cpp's form: the schema beside the type
            return dict(response_format.get("schema") or {})
        return dict(response_format.get("json_schema", {}).get("schema") or {})


def _error(status: int, message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": status}}


class FakeVllm:
    """Use as a context manager; `base_url` is what `LlmSettings.url` takes."""

    def __init__(
        self,
        served_model: str = DEFAULT_MODEL,
        *,
        expected_properties: frozenset[str] | None = None,
        response_format: Literal["json_schema", "json_object", "none"] = "json_schema",
        default: Reply | None = None,
        api_key: str | None = None,
    ) -> None:
        self.served_model = served_model
        self.api_key = api_key  # vLLM started with --api-key: anything else is answered 401
        self.expected_properties = expected_properties
        # What the client must send: vLLM's json_schema; llama.cpp's json_object + schema; or
        # none for plain chat (the phrasing of `why`), where any response_format is wrong.
        self.response_format = response_format
        self.default = default
        self.requests: list[RecordedRequest] = []
        self.problems: list[str] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def completions(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> FakeVllm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeVllm:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what the handler calls -----------------------------------------------------------------

    def _record(self, request: RecordedRequest, problems: list[str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.problems.extend(problems)

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def _check(self, body: Any) -> tuple[int, list[str]]:
        """The status vLLM-as-we-need-it would answer, and what was wrong with the request."""
        if not isinstance(body, dict):
            return 400, ["the body is not a JSON object"]
        if body.get("model") != self.served_model:
            return 404, [f"model {body.get('model')!r} is not the served model {self.served_model!r}"]
        problems = [f"sent {key!r}, which vLLM ignores silently" for key in body if key.startswith("guided_")]
        extra = body.get("extra_body")
        if isinstance(extra, dict) and any(k.startswith("guided_") for k in extra):
            problems.append("sent guided_* in extra_body")
        problems.extend(_message_problems(body.get("messages")))
        sent = body.get("response_format")
        if self.response_format == "json_schema":
            problems.extend(self._format_problems(sent))
        elif self.response_format == "json_object":
            if not (isinstance(sent, dict) and sent.get("type") == "json_object" and "schema" in sent):
                problems.append(f"response_format is {sent!r}, not json_object with a schema")
            if not isinstance(body.get("max_tokens"), int):
                problems.append("llama.cpp needs max_tokens (it ignores max_completion_tokens)")
        elif sent is not None:
            problems.append("a plain chat call sent a response_format")
        if body.get("stream"):
            problems.append("asked for a stream; the client must wait for one whole answer")
        if not isinstance(body.get("max_completion_tokens", body.get("max_tokens")), int):
            problems.append("no token limit (max_completion_tokens / max_tokens)")
        return (400 if problems else 200), problems

    def _format_problems(self, response_format: Any) -> list[str]:
        if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
            return [f"response_format is {response_format!r}, not json_schema"]
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return ["response_format.json_schema has no name"]
        schema = spec.get("schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return ["response_format.json_schema.schema is not an object schema"]
        properties = set(schema.get("properties") or {})
        problems = []
        if schema.get("additionalProperties") is not False:
            problems.append("the schema allows additional properties")
        if set(schema.get("required") or ()) != properties:
            problems.append("the schema does not require every property")
        if self.expected_properties is not None and properties != self.expected_properties:
            problems.append(
                f"schema properties differ: missing {sorted(self.expected_properties - properties)}, "
                f"unexpected {sorted(properties - self.expected_properties)}"
            )
        return problems

    def _wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def _message_problems(messages: Any) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["messages is not a non-empty list"]
    problems = []
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            problems.append(f"messages[{n}] has no known role")
        elif not isinstance(message.get("content"), str):
            problems.append(f"messages[{n}].content is not a string")
    return problems


def _filled(fields: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every other schema property written as null (false for a plain boolean)."""
    answer: dict[str, Any] = {}
    for key, spec in (schema.get("properties") or {}).items():
        blank = False if isinstance(spec, dict) and spec.get("type") == "boolean" else None
        answer[key] = fields.get(key, blank)
    answer.update({k: v for k, v in fields.items() if k not in answer})
    return answer


def _echoed(reply: EchoHint, body: dict[str, Any]) -> dict[str, Any]:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    text = users[-1]["content"] if users else ""
    for line in text.splitlines():
        if line.startswith(reply.label):
            with contextlib.suppress(json.JSONDecodeError):
                found = json.loads(line.removeprefix(reply.label))
                if isinstance(found, dict):
                    return {**found, **reply.overrides}
    return {"intent": "unknown", "question": "What do you need?", **reply.overrides}


def _completion(model: str, content: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat.completion object with the fields vLLM's OpenAI server fills in."""
    return {
        "id": f"chatcmpl-{time.monotonic_ns():x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None, "tool_calls": []},
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
            }
        ],
        "usage": {"prompt_tokens": 100, "total_tokens": 150, "completion_tokens": 50},
        "prompt_logprobs": None,
    }


def _handler_for(fake: FakeVllm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms ACK wait

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def _recorded(self, body: dict[str, Any] | None, status: int, problems: list[str]) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = RecordedRequest(self.command, self.path, body, headers, status)
            fake._record(request, problems)

        def _refused(self, body: dict[str, Any] | None) -> bool:
            """vLLM's --api-key check: the Bearer token must be the key, or 401 before anything else."""
            if fake.api_key is None or self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                return False
            self._recorded(body, 401, [])
            self._send(401, {"error": "Unauthorized"})
            return True

        def do_GET(self) -> None:
            if self._refused(None):
                return
            if self.path != "/v1/models":
                self._recorded(None, 404, [])
                self._send(404, {"detail": "Not Found"})
                return
            self._recorded(None, 200, [])
            model = {"id": fake.served_model, "object": "model", "created": int(time.time())}
            model |= {"owned_by": "vllm", "root": fake.served_model, "parent": None, "max_model_len": 32768}
            self._send(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                body = None
            if self._refused(body if isinstance(body, dict) else None):
                return
            if self.path != "/v1/chat/completions":
                self._recorded(body if isinstance(body, dict) else None, 404, [])
                self._send(404, {"detail": "Not Found"})
                return
            status, problems = fake._check(body)
            recorded = body if isinstance(body, dict) else None
            if status != 200:
                self._recorded(recorded, status, problems)
                kind = "NotFoundError" if status == 404 else "BadRequestError"
                self._send(status, _error(status, "; ".join(problems), kind))
                return
            assert isinstance(body, dict)
            reply = fake._next_reply()
            delay = 0.0
            while isinstance(reply, Delayed):
                delay += reply.seconds
                reply = reply.then
            status = reply.status if isinstance(reply, HttpError) else 200 if reply else 500
            self._recorded(body, status, [])  # on arrival: a test sees a request its client gave up on
            fake._wait(delay)
            self._answer(body, reply)

        def _answer(self, body: dict[str, Any], reply: Reply | None) -> None:
            schema = RecordedRequest("POST", self.path, body, {}, 200).schema
            if reply is None:
                self._send(500, _error(500, "the fake vLLM has no reply scripted", "InternalServerError"))
            elif isinstance(reply, HttpError):
                self._send(reply.status, _error(reply.status, reply.message, reply.error_type))
            elif isinstance(reply, RawText):
                self._send(200, _completion(fake.served_model, reply.content, reply.finish_reason))
            elif isinstance(reply, Structured):
                content = json.dumps(_filled(reply.fields, schema))
                self._send(200, _completion(fake.served_model, content))
            elif isinstance(reply, EchoHint):
                content = json.dumps(_filled(_echoed(reply, body), schema))
                self._send(200, _completion(fake.served_model, content))

    return Handler
