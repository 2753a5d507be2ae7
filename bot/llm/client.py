"""The one place that talks to the language model: vLLM's OpenAI API through LangChain.

`ChatOpenAI(...).with_structured_output(<ModelReading's JSON schema>, method="json_schema",
include_raw=True, strict=True)` sends `response_format={"type": "json_schema", ...}`, which vLLM
turns into constrained decoding: the model cannot produce a key or a type outside our schema. The
answer comes back as a dict and is validated by `ModelReading` here, so a bad answer is one path
(`parsing_error` or a ValidationError), whichever layer notices it. The old vLLM `guided_json` parameter
is never sent: since vLLM 0.12 it is silently ignored (HTTP 200, unconstrained output).

`max_retries=0` and a short `timeout`: a person is waiting, and the grammar's reading is the
fallback, so one slow answer is cheaper to abandon than to retry. Every failure becomes a
`ConciergeError` whose `reason` says in a few words why the assistant was not used (the routing
shows it as the "degraded" note): it timed out, it is unreachable, it answered with an HTTP error,
or its answer does not fit the request form.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Literal

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, ValidationError

from backends.errors import BackendUnavailable, ConciergeError, ConfigurationError
from backends.types import Intent
from bot.llm.output import READING_SCHEMA, InvalidModelOutput, ModelReading, intent_from_reading
from bot.llm.prompts import ConversationSoFar, chat_messages
from bot.llm.settings import LlmSettings

log = logging.getLogger("concierge.llm")

INVALID_ANSWER = "the assistant gave an answer that does not fit the request form"


class AssistantUnavailable(BackendUnavailable):
    """The model could not be asked (timeout, unreachable, HTTP error); `reason` is the short why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason[0].upper()}{reason[1:]} ({detail}); the built-in parser answered instead.")
        self.reason = reason


class AssistantAnswerInvalid(InvalidModelOutput):
    """The model answered, but not with a usable request (bad JSON, schema or limits)."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"{INVALID_ANSWER[0].upper()}{INVALID_ANSWER[1:]} ({detail}).")
        self.reason = INVALID_ANSWER


@functools.lru_cache(maxsize=8)
def chat_model_from(settings: LlmSettings) -> ChatOpenAI:
    """The LangChain chat model for vLLM's OpenAI endpoint in `settings`; one per settings, so
    reading and phrasing share its HTTP connections."""
    if not settings.url:
        raise ConfigurationError(
            "No language model is configured (CONCIERGE_LLM_URL is empty). Set it to vLLM's OpenAI "
            "base URL, e.g. http://vllm:8000/v1, or leave it empty to use the built-in parser only."
        )
    return ChatOpenAI(
        model=settings.model,
        base_url=settings.url,
        api_key=settings.api_key,
        timeout=settings.timeout_s,
        max_tokens=settings.max_tokens,  # type: ignore[call-arg]  # an alias of max_completion_tokens
        max_retries=0,
        temperature=0,
    )


class LlmReader:
    """Reads one message (with the grammar's hint and the thread so far) into an `Intent`."""

    def __init__(
        self,
        chat_model: BaseChatModel,
        *,
        timeout_s: float,
        model_name: str,
        structured_output: Literal["json_schema", "json_object"] = "json_schema",
        max_tokens: int | None = None,
    ) -> None:
        self._chat_model = chat_model
        self._structured: Runnable[Any, Any]
        if structured_output == "json_schema":
            self._structured = chat_model.with_structured_output(
                READING_SCHEMA, method="json_schema", include_raw=True, strict=True
            )
        else:  # llama.cpp's form; the answer is the message's text, parsed by `_parsed`
            extra = {"max_tokens": max_tokens} if max_tokens else {}
            self._structured = chat_model.bind(
                response_format={"type": "json_object", "schema": READING_SCHEMA}, extra_body=extra
            )
        self.timeout_s = timeout_s
        self.model_name = model_name

    @classmethod
    def from_settings(cls, settings: LlmSettings) -> LlmReader:
        return cls(
            chat_model_from(settings),
            timeout_s=settings.timeout_s,
            model_name=settings.model,
            structured_output=settings.structured_output,
            max_tokens=settings.max_tokens,
        )

    def read(self, text: str, hint: Intent | None, conversation: ConversationSoFar | None = None) -> Intent:
        """The model's reading of `text` as our `Intent`.

        Raises `AssistantUnavailable` or `AssistantAnswerInvalid` (both `ConciergeError`), never
        anything else: whatever the client library raises is translated here."""
        try:
            answer = self._structured.invoke(list(chat_messages(text, hint, conversation)))
        except ConciergeError:
            raise
        except Exception as e:
            raise self._translated(e) from e
        reading = self._parsed(answer)
        try:
            return intent_from_reading(reading)
        except InvalidModelOutput as e:
            raise AssistantAnswerInvalid(e.message) from e

    def served_models(self) -> list[str]:
        """The model names the endpoint serves (`GET /v1/models`), to check the configuration."""
        if not isinstance(self._chat_model, ChatOpenAI):
            return [self.model_name]
        try:
            return [m.id for m in self._chat_model.root_client.models.list()]
        except Exception as e:
            raise self._translated(e) from e

    def _parsed(self, answer: Any) -> ModelReading:
        if isinstance(answer, BaseMessage):  # json_object mode: the JSON is the message's text
            answer = _json_message(answer)
        parsed = answer.get("parsed") if isinstance(answer, dict) else answer
        if isinstance(parsed, ModelReading):
            return parsed
        problem = answer.get("parsing_error") if isinstance(answer, dict) else None
        if isinstance(parsed, dict | BaseModel):
            try:
                shown = parsed if isinstance(parsed, dict) else parsed.model_dump()
                return ModelReading.model_validate(shown)
            except ValidationError as e:
                problem = e
        raise AssistantAnswerInvalid(_problem(problem) if problem else "no structured answer")

    def _translated(self, error: Exception) -> ConciergeError:
        if isinstance(error, openai.APITimeoutError):
            return AssistantUnavailable(
                f"the assistant did not answer within {self.timeout_s:g} s", "timed out"
            )
        if isinstance(error, openai.APIConnectionError):
            return AssistantUnavailable("the assistant is unreachable", _first_line(error))
        if isinstance(error, openai.NotFoundError):
            return AssistantUnavailable(
                f"the assistant does not serve the model {self.model_name!r}", "HTTP 404"
            )
        if isinstance(error, openai.APIStatusError):
            return AssistantUnavailable(
                f"the assistant answered with an error (HTTP {error.status_code})", _first_line(error)
            )
        if isinstance(error, openai.LengthFinishReasonError):
            return AssistantAnswerInvalid("the answer was cut off at the token limit")
        if isinstance(error, ValueError | openai.OpenAIError):  # bad JSON, schema or refusal
            return AssistantAnswerInvalid(_problem(error))
        log.exception("the language model client failed in an unexpected way")
        return AssistantAnswerInvalid(f"{type(error).__name__}: {_first_line(error)}")


def _problem(error: BaseException | object) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(f"{'.'.join(map(str, p['loc'])) or 'answer'}: {p['msg']}" for p in error.errors())[
            :300
        ]
    return _first_line(error)


def _first_line(error: BaseException | object) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def _json_message(message: BaseMessage) -> dict[str, Any]:
    """{"parsed": …} or {"parsing_error": …}, as `with_structured_output(include_raw=True)` gives."""
    if message.response_metadata.get("finish_reason") == "length":
        return {"parsed": None, "parsing_error": "the answer was cut off at the token limit"}
    try:
        return {"parsed": json.loads(message.text)}
    except ValueError as e:
        return {"parsed": None, "parsing_error": e}
