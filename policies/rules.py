"""The site's limits as typed settings, loaded from YAML: the shipped default, then the site's file.

Thresholds live in data, never in code (DESIGN.md), and the shipped `default.yaml` is the only
place their default values are written: the models below have no defaults of their own, so a
value can never silently differ between the file and the code.

The site file is layered over the default key by key (mappings merge, anything else replaces),
so a site states only what it changes. Per-person and per-group exceptions (`overrides`) are
layered the same way when a request is judged: groups in the order the file lists them, then the
person, so the most specific word wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from backends.errors import ConfigurationError
from backends.types import VALUE_MODEL, Identity, JobRequest, Target, Workload

DEFAULT_POLICY_FILE = Path(__file__).with_name("default.yaml")


class RequiredFields(BaseModel):
    """JobRequest fields a request must state, per workload (no workload stated counts as batch)."""

    model_config = VALUE_MODEL

    batch: tuple[str, ...]
    service: tuple[str, ...]

    @field_validator("batch", "service")
    @classmethod
    def _known_fields(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in JobRequest.model_fields]
        if unknown:
            known = ", ".join(sorted(JobRequest.model_fields))
            raise ValueError(f"{', '.join(unknown)} is not a request field; fields are: {known}")
        return names

    def for_workload(self, workload: Workload | None) -> tuple[str, ...]:
        return self.service if workload == "service" else self.batch


class PolicyLimits(BaseModel):
    """The limits that apply to one person once overrides are layered in."""

    model_config = VALUE_MODEL

    max_gpus_per_job: int | None = Field(ge=0)
    max_gpus_per_user: int | None = Field(ge=0)
    max_time_minutes: int | None = Field(ge=1)
    default_time_minutes: int = Field(ge=1)
    allowed_partitions: tuple[str, ...] | None
    allowed_gpu_types: tuple[str, ...] | None
    required_fields: RequiredFields
    approval_gpu_hours: float | None = Field(ge=0)
    allow_cpu_jobs: bool

    @field_validator("allowed_gpu_types")
    @classmethod
    def _lowercase_gpu_types(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        # The parser prints GPU types in lower case (contracts/parse.md); compare like with like.
        return None if names is None else tuple(name.strip().lower() for name in names)

    @model_validator(mode="after")
    def _default_time_within_max(self) -> Self:
        if self.max_time_minutes is not None and self.default_time_minutes > self.max_time_minutes:
            raise ValueError(
                f"default_time_minutes ({self.default_time_minutes}) is longer than "
                f"max_time_minutes ({self.max_time_minutes}); every request without a time would be refused"
            )
        return self


class LimitsOverride(BaseModel):
    """Any of `PolicyLimits`' keys; only the keys written in the file replace the site's value."""

    model_config = VALUE_MODEL

    max_gpus_per_job: int | None = Field(default=None, ge=0)
    max_gpus_per_user: int | None = Field(default=None, ge=0)
    max_time_minutes: int | None = Field(default=None, ge=1)
    default_time_minutes: int | None = Field(default=None, ge=1)
    allowed_partitions: tuple[str, ...] | None = None
    allowed_gpu_types: tuple[str, ...] | None = None
    required_fields: RequiredFields | None = None
    approval_gpu_hours: float | None = Field(default=None, ge=0)
    allow_cpu_jobs: bool | None = None

    def applied_to(self, limits: PolicyLimits) -> PolicyLimits:
        # Validate again rather than model_copy, so an override can't produce inconsistent limits.
        changes = {key: getattr(self, key) for key in self.model_fields_set}
        return PolicyLimits.model_validate({**limits.model_dump(), **changes})


class PolicyOverrides(BaseModel):
    model_config = VALUE_MODEL

    users: dict[str, LimitsOverride] = {}
    groups: dict[str, LimitsOverride] = {}


class Routing(BaseModel):
    """Where a request that names no target goes, by workload (Slurm runs batch work only)."""

    model_config = VALUE_MODEL

    batch: Target
    service: Target

    def target_for(self, workload: Workload | None) -> Target:
        return self.service if workload == "service" else self.batch


class PolicySettings(PolicyLimits):
    """The site's policy: its limits, the exceptions for named people and groups, and routing."""

    overrides: PolicyOverrides = PolicyOverrides()
    routing: Routing

    @model_validator(mode="after")
    def _overrides_consistent(self) -> Self:
        for kind, table in (("users", self.overrides.users), ("groups", self.overrides.groups)):
            for name, override in table.items():
                try:
                    override.applied_to(self.site_limits())
                except ValidationError as e:
                    problems = "; ".join(str(error["msg"]) for error in e.errors())
                    raise ValueError(f"overrides.{kind}.{name}: {problems}") from e
        return self

    def site_limits(self) -> PolicyLimits:
        return PolicyLimits.model_validate(self.model_dump(exclude={"overrides", "routing"}))

    def limits_for(self, identity: Identity | None) -> PolicyLimits:
        limits = self.site_limits()
        if identity is None:
            return limits
        for group, override in self.overrides.groups.items():
            if group in identity.k8s_groups:
                limits = override.applied_to(limits)
        for user in (identity.unix_user, identity.requester):
            personal = self.overrides.users.get(user) if user else None
            if personal is not None:
                return personal.applied_to(limits)
        return limits


def load_policy(site_file: Path | None) -> PolicySettings:
    """The shipped default with the site's file (if any) layered over it."""
    layered = _read_mapping(DEFAULT_POLICY_FILE)
    blamed = DEFAULT_POLICY_FILE
    if site_file is not None:
        layered = _merged(layered, _read_mapping(site_file))
        blamed = site_file
    try:
        return PolicySettings.model_validate(layered)
    except ValidationError as e:
        raise ConfigurationError(f"the policy file {blamed} is wrong: {_describe(e)}") from e


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigurationError(
            f"cannot read the policy file {path}: {e.strerror}; check CONCIERGE_POLICY_FILE"
        ) from e
    except yaml.YAMLError as e:
        raise ConfigurationError(f"the policy file {path} is not valid YAML: {e}") from e
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigurationError(
            f"the policy file {path} must hold a mapping of keys (e.g. `max_gpus_per_job: 4`), "
            f"not a {type(loaded).__name__}"
        )
    return loaded


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{where}' (known keys: {', '.join(_known_keys(item['loc']))})")
        else:
            problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed beside the unknown one, so the message shows the likely intended spelling."""
    model: type[BaseModel] = PolicySettings
    parents = [str(part) for part in loc[:-1]]
    while parents:
        part = parents.pop(0)
        if model is PolicyOverrides:
            model = LimitsOverride
            parents = parents[1:]  # past the person's or group's name
            continue
        field = model.model_fields.get(part)
        nested = _model_in(field.annotation) if field else None
        if nested is None:
            break
        model = nested
    return sorted(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
