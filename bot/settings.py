"""Typed settings, built once at start-up and passed in through constructors.

Sources, strongest first: keyword arguments (tests), `CONCIERGE_*` environment variables
(nested with `__`, e.g. `CONCIERGE_SLURM__DEFAULT_PARTITION`), then an optional YAML file named by
`CONCIERGE_CONFIG`. Nothing else in the code reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from backends.errors import ConfigurationError
from backends.gpu.settings import GpuTelemetrySettings
from backends.k8s.settings import K8sSettings
from backends.slurm.settings import SlurmSettings
from bot.conversations.settings import ConversationSettings
from bot.llm.settings import LlmSettings, PhrasingSettings
from bot.slack.settings import SlackSettings
from bot.store.telemetry import RollupSettings
from bot.telemetry.digest import DigestThresholds
from bot.telemetry.nudges import NudgeSettings
from bot.telemetry.schedule_settings import ScheduleSettings


def default_database_url() -> str:
    data_dir = Path(user_data_dir("gpu-concierge"))
    return f"sqlite:///{data_dir / 'concierge.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONCIERGE_", env_nested_delimiter="__", extra="forbid")

    database_url: str = Field(default_factory=default_database_url)
    default_backend: Literal["slurm", "k8s"] = "slurm"
    policy_file: Path | None = None  # the site's policy YAML, layered over the shipped default
    # Requester ids (or Unix users) marked as admins, honoured only when the process runs as root:
    # at the CLI the environment is the caller's own. Everyone else's admins come from the root-owned
    # site file (bot/site_file.py) or the store (`concierge users map … --admin`); see bot/identity.py.
    admins: list[str] = []
    tracker_interval_s: float = 15.0
    slurm: SlurmSettings = SlurmSettings()
    # Kubernetes is configured when any CONCIERGE_K8S__… value (or a `k8s:` key) is given.
    k8s: K8sSettings | None = None
    # The Slack door (`concierge serve`), configured by CONCIERGE_SLACK__BOT_TOKEN and friends.
    slack: SlackSettings | None = None
    # The language model (vLLM's OpenAI API). Flat names, as the deployment docs spell them:
    # CONCIERGE_LLM_URL, CONCIERGE_LLM_MODEL, CONCIERGE_LLM_TIMEOUT_S, CONCIERGE_LLM_MAX_TOKENS.
    llm_url: str | None = None
    llm_model: str = LlmSettings().model
    llm_timeout_s: float = LlmSettings().timeout_s
    llm_max_tokens: int = LlmSettings().max_tokens
    llm_structured_output: Literal["json_schema", "json_object"] = "json_schema"  # json_object: llama.cpp

    phrasing: PhrasingSettings = PhrasingSettings()  # how `why` answers are phrased by the model
    conversation: ConversationSettings = ConversationSettings()
    # GPU telemetry: sources (CONCIERGE_GPU__DCGM__ENDPOINTS, …), roll-ups, digests, schedule, nudges.
    gpu: GpuTelemetrySettings = GpuTelemetrySettings()
    rollup: RollupSettings = RollupSettings()
    digest: DigestThresholds = DigestThresholds()
    schedule: ScheduleSettings = ScheduleSettings()
    nudges: NudgeSettings = NudgeSettings()

    @property
    def llm(self) -> LlmSettings:
        return LlmSettings(
            url=self.llm_url,
            model=self.llm_model,
            timeout_s=self.llm_timeout_s,
            max_tokens=self.llm_max_tokens,
            structured_output=self.llm_structured_output,
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by CONCIERGE_CONFIG (the one sanctioned environment read besides the prefix)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("CONCIERGE_CONFIG")
        if not path:
            return {}
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as e:
            raise ConfigurationError(f"cannot read the config file {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise ConfigurationError(f"the config file {path} is not valid YAML: {e}") from e
        if loaded is None:
            return {}
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"the config file {path} must hold a mapping of settings")
        return loaded
