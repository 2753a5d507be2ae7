"""Why a job waits, phrased by the language model from the facts we give it, and only those.

The backends already explain a wait in plain words (`PendingReason.sentence`, alternatives, the
expected start); the model only turns those facts and the free capacity into a few friendlier
sentences. It is never asked, and never trusted, to know anything itself:

- it is given the facts as text and told to use nothing else;
- its answer is checked before anyone sees it: every number in it (digits, or words such as
  "two" or "a dozen") must be a number of the facts, and every GPU model it names must be one the
  facts name, and every date or clock time must be written in the facts as such. "Your job should
  start in about 2 hours" when the facts give no 2 is an invented number, and a person would plan
  around it;
- any failure (an exception, a timeout, an empty, overlong or cut-off answer, a failed check) gives the plain
  template, the same text the CLI and the Slack door print without a model (`bot.text_render.reasons`),
  so the answer is never worse than without the model, and `Phrased.source` says which one it is.

The chat model is passed in (a LangChain `BaseChatModel`, e.g. `ChatOpenAI` on vLLM, or a plain
callable from messages to text), so tests hand in LangChain's fake chat models or a client of a
local HTTP server. The deadline is ours, not only the client's: a call that outlives it is left to
finish on a daemon thread and its answer is dropped, so a slow model never holds a person's answer.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from backends.types import GpuPool, PendingReason
from bot.llm.settings import PhrasingSettings
from bot.text_render import reasons as plain_reasons
from bot.understanding.gpu_models import find_gpu_models
from bot.understanding.numbers import ARTICLES, WORD_NUMBER, read_number

ChatModel = BaseChatModel | Callable[[list[BaseMessage]], str]
Source = Literal["model", "template"]

SYSTEM_PROMPT = """\
You tell a person why their GPU job is waiting, in two to four short sentences of plain English.
Use only the facts given. Do not add any number, date, time, duration, GPU type, partition or \
advice that the facts do not contain; copy numbers exactly as the facts write them, in digits. \
When the facts list what would start sooner, end with the best of those. No greeting, no headings, \
no markdown."""

_DIGITS_RE = re.compile(r"\d+(?:\.\d+)?")
# Dates and clock times are checked whole: "2025-06-02" is made of numbers the facts may all hold.
_DATE_OR_TIME_RE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}:\d{2}")
_WORD_NUMBER_RE = re.compile(rf"(?<![\w-])(?:{WORD_NUMBER})(?![\w-])", re.IGNORECASE)


@dataclass(frozen=True)
class Phrased:
    """The answer shown to the person, where it came from, and why the template was used."""

    text: str
    source: Source
    fallback_reason: str | None = None


def _when(moment: datetime) -> str:
    at = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _pool_line(pool: GpuPool) -> str:
    line = f"- {pool.backend} pool {pool.pool}: {pool.gpu_type or 'gpu'}, {pool.free} of {pool.total} free"
    if pool.free_per_node:
        line += f", at most {max(pool.free_per_node)} free on one node"
    if pool.unavailable_nodes:
        line += f", {len(pool.unavailable_nodes)} node(s) down or drained"
    if pool.max_time_minutes is not None:
        line += f", longest wall time {pool.max_time_minutes} minutes"
    return line


def facts_text(job_id: str, reasons: Sequence[PendingReason], pools: Sequence[GpuPool]) -> str:
    """The facts the model may use, as it reads them: the only source of its numbers and names."""
    lines = [f"Job: {job_id}"]
    for reason in reasons:
        lines.append(f"Reason ({reason.code.value}): {reason.sentence}")
        if reason.raw:
            lines.append(f"  The scheduler says: {reason.raw}")
        if reason.expected_start is not None:
            lines.append(f"  Expected start: {_when(reason.expected_start)}")
        lines.extend(f"  Would start sooner: {alternative}" for alternative in reason.alternatives)
    if pools:
        lines.append("GPUs now:")
        lines.extend(_pool_line(pool) for pool in pools)
    return "\n".join(lines)


def _numbers(text: str) -> set[float]:
    # Dates and times are checked whole, so their parts are no numbers of their own: "02:07" in the
    # facts does not vouch for "starts in 7 minutes".
    text = _DATE_OR_TIME_RE.sub(" ", text)
    found = {float(digits) for digits in _DIGITS_RE.findall(text)}
    for match in _WORD_NUMBER_RE.finditer(text):
        if match.group(0).lower() not in ARTICLES and (value := read_number(match.group(0))) is not None:
            found.add(value)
    return found


def _gpu_families(text: str) -> set[str]:
    return {model.gpu_type for model in find_gpu_models(text)}


def _shown_number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def invented_facts(phrasing: str, facts: str) -> list[str]:
    """Numbers and GPU models in `phrasing` that `facts` do not contain (empty: nothing invented)."""
    invented = [_shown_number(n) for n in sorted(_numbers(phrasing) - _numbers(facts))]
    invented.extend(sorted(set(_DATE_OR_TIME_RE.findall(phrasing)) - set(_DATE_OR_TIME_RE.findall(facts))))
    invented.extend(sorted(_gpu_families(phrasing) - _gpu_families(facts)))
    return invented


class _Deadline(Exception):
    pass


class _CutOff(Exception):
    """The model stopped at its token limit: the end of what it meant to say is missing."""


def _within(seconds: float, call: Callable[[], str]) -> str:
    """`call()`'s result, or `_Deadline` when it takes longer than `seconds` (it is then abandoned)."""
    outcome: list[str] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as e:  # handed to the caller's thread, which decides
            failure.append(e)
        finally:
            finished.set()

    threading.Thread(target=run, name="concierge-phrasing", daemon=True).start()
    if not finished.wait(seconds):
        raise _Deadline
    if failure:
        raise failure[0]
    return outcome[0]


def _answer_text(chat: ChatModel, messages: list[BaseMessage]) -> str:
    if isinstance(chat, BaseChatModel):
        reply = chat.invoke(messages)
        if reply.response_metadata.get("finish_reason") == "length":
            raise _CutOff
        if isinstance(reply.content, str):
            return reply.content
        return "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in reply.content)
    return chat(messages)


def phrase_why(
    job_id: str,
    reasons: Sequence[PendingReason],
    pools: Sequence[GpuPool],
    chat: ChatModel | None,
    settings: PhrasingSettings | None = None,
) -> Phrased:
    """Why job `job_id` waits: the model's phrasing of the facts when it passes the checks, else
    the plain template. Never raises for the model's sake."""
    settings = settings or PhrasingSettings()
    template = plain_reasons(job_id, reasons)

    def fallback(why: str) -> Phrased:
        return Phrased(template, "template", why)

    if chat is None:
        return fallback("no language model is configured")
    if not reasons:
        return fallback("the scheduler gave no reason to phrase")
    facts = facts_text(job_id, reasons, pools)
    messages: list[BaseMessage] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(facts)]
    try:
        answer = _within(settings.timeout_s, lambda: _answer_text(chat, messages)).strip()
    except _Deadline:
        return fallback(f"the model did not answer within {settings.timeout_s:g} s")
    except _CutOff:  # a sentence cut in half reads as a whole one, and may say the opposite
        return fallback("the model's answer was cut off at its token limit")
    except Exception as e:  # any client failure: the template is always a good answer
        return fallback(f"the model failed: {type(e).__name__}")
    if not answer:
        return fallback("the model's answer was empty")
    if len(answer) > settings.max_chars:
        return fallback(f"the model's answer was longer than {settings.max_chars} characters")
    invented = invented_facts(answer, facts)
    if invented:
        return fallback("the model's answer has what the facts do not say: " + ", ".join(invented))
    return Phrased(answer, "model")
