"""Where the language model is served and how long the bot waits for it.

A plain model with defaults (`Settings.llm`: CONCIERGE_LLM_URL, CONCIERGE_LLM_API_KEY, …): no
URL means no model, and the grammar answers everything. The timeout is short on purpose: a person
in Slack waits for the answer, and the grammar's reading is always there to fall back on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LlmSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str | None = None  # vLLM's OpenAI base URL, e.g. http://vllm:8000/v1; None: grammar only
    model: str = "Qwen/Qwen2.5-7B-Instruct"  # the served model name (vLLM's --served-model-name)
    timeout_s: float = Field(default=8.0, gt=0, le=120)
    max_tokens: int = Field(default=512, ge=16, le=8192)
    api_key: SecretStr = SecretStr("EMPTY")  # vLLM accepts any key unless started with --api-key
    # vLLM constrains decoding with response_format json_schema; llama.cpp's server only takes
    # {"type": "json_object", "schema": …} (and honours max_tokens, not max_completion_tokens).
    structured_output: Literal["json_schema", "json_object"] = "json_schema"


class PhrasingSettings(BaseModel):
    """How long a person waits for the model's phrasing before the template answers, and its size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(default=6.0, gt=0, le=60)
    max_chars: int = Field(default=1200, ge=100, le=10_000)
