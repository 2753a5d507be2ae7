"""What the fake vLLM answers, one scripted reply per chat completion.

The replies cover what a real vLLM does to a client: a structured answer (constrained decoding
makes it fit the schema), text that is not JSON (a server started without structured outputs, or
a proxy in between), an answer with a value the person never said, an HTTP error, an answer slower
than the client waits, and "echo": the hint our prompt carries, answered back at once, which is
what the overhead benchmark needs (a model that costs nothing, so only our own work is measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Structured:
    """A JSON answer; keys the request's schema has but `fields` lacks are filled in as null
    (false for booleans), as constrained decoding would have to write them."""

    fields: dict[str, Any]


@dataclass(frozen=True)
class RawText:
    """`content` exactly as given: answers that are not JSON at all, or cut off at the token limit
    (`finish_reason="length"`)."""

    content: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class HttpError:
    status: int = 500
    message: str = "Internal Server Error"
    error_type: str = "InternalServerError"


@dataclass(frozen=True)
class Delayed:
    """Wait `seconds` (cut short when the server stops), then answer `then`."""

    seconds: float
    then: Reply


@dataclass(frozen=True)
class EchoHint:
    """Answer with the JSON found after `label` in the last user message, with `overrides` applied
    (e.g. {"gpus": 8} for a model that invents a GPU count). No such line: an `unknown` answer."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


Reply = Structured | RawText | HttpError | Delayed | EchoHint
