"""A fake vLLM OpenAI endpoint on 127.0.0.1 that records and checks what the real client sends."""

from tests.openai_fake.replies import Delayed, EchoHint, HttpError, RawText, Reply, Structured
from tests.openai_fake.server import DEFAULT_MODEL, FakeVllm, RecordedRequest

__all__ = [
    "DEFAULT_MODEL",
    "Delayed",
    "EchoHint",
    "FakeVllm",
    "HttpError",
    "RawText",
    "RecordedRequest",
    "Reply",
    "Structured",
]
