"""The language model: `/v1/models` lists the configured model, and one constrained call answers
(through bot/llm/client.py, the one client that talks to it)."""

from __future__ import annotations

from backends.errors import ConciergeError
from bot.doctor.report import Check, failed, passed
from bot.llm.settings import LlmSettings

NAME = "model"
PROBE_TEXT = "show the queue"


def model_checks(settings: LlmSettings) -> list[Check]:
    from bot.llm.client import LlmReader

    reader = LlmReader.from_settings(settings)
    try:
        served = reader.served_models()
    except ConciergeError as e:
        return [
            failed(
                NAME,
                "reachable",
                f"{settings.url}: {_said(e)}",
                "start the model server or fix CONCIERGE_LLM_URL",
                e.exit_code,
            )
        ]
    checks = [passed(NAME, "reachable", str(settings.url))]
    if settings.model not in served:
        checks.append(
            failed(
                NAME,
                f"serves {settings.model}",
                f"it serves {', '.join(served) or 'nothing'}",
                "set CONCIERGE_LLM_MODEL to one of those (vLLM's --served-model-name)",
            )
        )
        return checks
    checks.append(passed(NAME, f"serves {settings.model}"))
    try:
        intent = reader.read(PROBE_TEXT, None)
    except ConciergeError as e:
        return [*checks, failed(NAME, "a constrained call answers", _said(e), _ANSWER_FIX, e.exit_code)]
    return [
        *checks,
        passed(NAME, "a constrained call answers", f"{PROBE_TEXT!r} read as {intent.kind.value}"),
    ]


_ANSWER_FIX = (
    "check the server's structured-output support (CONCIERGE_LLM__STRUCTURED_OUTPUT: json_schema for "
    "vLLM, json_object for llama.cpp) and CONCIERGE_LLM__TIMEOUT_S"
)


def _said(error: ConciergeError) -> str:
    """The client's message without what a person's request would get instead (the grammar)."""
    return error.message.removesuffix("; the built-in parser answered instead.").rstrip(".")
