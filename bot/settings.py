"""Typed settings, built once at start-up and passed in through constructors.

Sources, strongest first: keyword arguments (tests), `CONCIERGE_*` environment variables
(nested with `__`, e.g. `CONCIERGE_SLURM__DEFAULT_PARTITION`; the model's also flat, e.g.
`CONCIERGE_LLM_URL`), then an optional YAML file named by `CONCIERGE_CONFIG`, then the root-owned
site file /etc/gpu-concierge/site.yaml (bot/site_file.py: policy, Slurm and Kubernetes defaults,
never a secret). Nothing else in the code reads the environment.

Plain data: this module imports only other settings modules, never a feature (the store, the
engine, a client), so any module may take its settings from here and building them costs no
feature's start-up; the sections of features whose packages are heavy to import live here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Self, Union, get_args, get_origin

import yaml
from platformdirs import user_data_dir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from backends.errors import ConfigurationError
from backends.gpu.settings import GpuTelemetrySettings
from backends.k8s.settings import K8sSettings
from backends.slurm.settings import SlurmSettings
from bot.llm.settings import LlmSettings, PhrasingSettings
from bot.remote.settings import LoginServiceSettings
from bot.site_file import load_site_file
from bot.slack.settings import SlackSettings
from bot.telemetry.schedule_settings import ScheduleSettings


class ConversationSettings(BaseModel):
    """How much of a conversation is kept. A Slack thread can run for days; only the last messages
    matter to a follow-up, and each is sent to the model with every later one: both are bounded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_texts: int = Field(default=20, ge=1, le=200)  # the person's last messages kept per conversation
    max_text_chars: int = Field(default=2000, ge=100, le=20_000)  # each kept message is cut to this
    # A conversation nobody spoke in for this long is deleted by the schedule's housekeeping (its
    # requests and their outcomes stay in the store): a follow-up after that starts afresh.
    keep_days: float = Field(default=30.0, gt=0)

    @property
    def keep_for(self) -> timedelta:
        return timedelta(days=self.keep_days)


class RollupSettings(BaseModel):
    """How GPU samples are counted and how long roll-ups are kept (bot/store/telemetry.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    minutes_kept_hours: int = Field(default=48, ge=1)
    hours_kept_days: int = Field(default=90, ge=1)
    # Periods up to this long (and still within the minutes kept) are read from the minute table.
    minute_resolution_up_to_hours: int = Field(default=6, ge=1)


class DigestThresholds(BaseModel):
    """When an allocation counts as idle, and how long the digest's lists are (bot/telemetry/digest.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low_pct: float = Field(default=15.0, ge=0, le=100)
    somewhat_low_pct: float = Field(default=25.0, ge=0, le=100)
    min_held_gpu_hours: float = Field(default=1.0, ge=0)
    top_users: int = Field(default=10, ge=1, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low_pct > self.somewhat_low_pct:
            raise ValueError(
                f"low_pct ({self.low_pct}) must not exceed somewhat_low_pct ({self.somewhat_low_pct})"
            )
        return self


class MetricsSettings(BaseModel):
    """/metrics, /healthz and /readyz of `serve` and `agent` (bot/metrics_http.py): on by default
    so probes and Prometheus find them; give `agent` another port where both run on one host."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    host: str = "0.0.0.0"  # noqa: S104 - Prometheus and the kubelet's probes come from elsewhere
    port: int = Field(default=9464, ge=0, le=65535)  # 0: any free port


class NudgeSettings(BaseModel):
    """Idle-GPU nudges (bot/telemetry/nudges.py): after how long, and how often about one job."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    idle_minutes: int = Field(default=60, ge=1)  # idle at least this long before the owner hears of it
    cooldown_hours: float = Field(default=24.0, gt=0)  # between two nudges about one job; also Keep's length
    # A job not seen holding its GPUs for this long has probably ended: nobody is nudged about it.
    seen_within_minutes: int = Field(default=15, ge=1)

    @property
    def idle_for(self) -> timedelta:
        return timedelta(minutes=self.idle_minutes)

    @property
    def cooldown(self) -> timedelta:
        return timedelta(hours=self.cooldown_hours)

    @property
    def seen_within(self) -> timedelta:
        return timedelta(minutes=self.seen_within_minutes)


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
    # The login nodes' door in `serve` (bot/remote/), opened by any CONCIERGE_LOGIN_SERVICE__… value.
    login_service: LoginServiceSettings | None = None
    # The language model (vLLM's OpenAI API): CONCIERGE_LLM__URL, …__API_KEY (vLLM's --api-key) and
    # friends, or flat as the deployment files spell them: CONCIERGE_LLM_URL, CONCIERGE_LLM_API_KEY, ….
    llm: LlmSettings = LlmSettings()
    phrasing: PhrasingSettings = PhrasingSettings()  # how `why` answers are phrased by the model
    conversation: ConversationSettings = ConversationSettings()
    # GPU telemetry: sources (CONCIERGE_GPU__DCGM__ENDPOINTS, …), roll-ups, digests, schedule, nudges.
    gpu: GpuTelemetrySettings = GpuTelemetrySettings()
    rollup: RollupSettings = RollupSettings()
    digest: DigestThresholds = DigestThresholds()
    schedule: ScheduleSettings = ScheduleSettings()
    nudges: NudgeSettings = NudgeSettings()
    # serve's and agent's /metrics, /healthz and /readyz (CONCIERGE_METRICS__PORT, …), and their
    # log lines: "json" writes one JSON object per line with the request id (bot/logs.py).
    metrics: MetricsSettings = MetricsSettings()
    log_format: Literal["text", "json"] = "text"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _EnvironmentWithPlainLists(settings_cls),
            _FlatLlmEnvironment(settings_cls),
            _YamlFileSource(settings_cls),
            _SiteFileSource(settings_cls),
        )


def load_settings() -> Settings:
    """The settings, or a `ConfigurationError` naming each variable that is wrong and the form it
    takes (exit 7), rather than pydantic's traceback."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(_problem(error) for error in e.errors())
        raise ConfigurationError(f"a setting is not usable: {problems}") from e
    except SettingsError as e:
        field = re.search(r'field "(\w+)"', str(e))
        variable = f"CONCIERGE_{field.group(1).upper()}" if field else "a CONCIERGE_… variable"
        raise ConfigurationError(
            f'{variable} could not be read: a list takes `a,b` or JSON `["a", "b"]`, a mapping '
            'takes JSON `{"key": "value"}`, or set its parts one by one (CONCIERGE_SECTION__KEY=value)'
        ) from e


def _problem(error: Any) -> str:
    path = [str(part) for part in error["loc"] if not isinstance(part, int)]
    variable = "CONCIERGE_" + "__".join(path).upper()
    given = error.get("input")
    shown = f" is {given!r}" if isinstance(given, str | int | float) else ""
    where = f"`{'.'.join(path)}` in CONCIERGE_CONFIG's file or the site file"
    return f"{variable} ({where}){shown}: {error['msg'].lower()}"


class _EnvironmentWithPlainLists(EnvSettingsSource):
    """`CONCIERGE_ADMINS=alice,bob` as well as the JSON `["alice", "bob"]`: a list setting whose
    value is not JSON is read as a comma-separated list, the form people type."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            if field is None or not _is_a_list(field.annotation) or str(value).lstrip().startswith("["):
                raise
            return [item.strip() for item in str(value).split(",") if item.strip()]


def _is_a_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_a_list(arg) for arg in get_args(annotation))
    return isinstance(origin, type) and issubclass(origin, Sequence) and not issubclass(origin, str)


class _FlatLlmEnvironment(PydanticBaseSettingsSource):
    """`CONCIERGE_LLM_<FIELD>` (CONCIERGE_LLM_URL, …_MODEL, …_API_KEY): the flat spelling of `llm`'s
    fields that the deployment files use; the nested CONCIERGE_LLM__<FIELD> wins where both are set."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        names = {name: f"CONCIERGE_LLM_{name.upper()}" for name in LlmSettings.model_fields}
        found = {name: os.environ[env] for name, env in names.items() if env in os.environ}
        return {"llm": found} if found else {}


class _SiteFileSource(PydanticBaseSettingsSource):
    """The root-owned site file's settings (bot/site_file.py), the weakest source: the site's defaults."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return load_site_file().settings()


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
