"""The site file: what only root may decide, read by every door from one root-owned YAML file.

Why a file and not the settings: the CLI runs as whoever calls it, so everything in its settings
(`CONCIERGE_*` variables, the YAML named by `CONCIERGE_CONFIG`) is the caller's to choose. A caller
who could say who the admins are would make themselves one. The site file is trusted only when it
and every directory above it belong to root and nobody else can write them (a sticky directory
such as /tmp passes: others cannot replace root's entry in it); otherwise it is refused with a
message saying how to fix it. A missing file names no admins (root and the store's admins remain).

The path is the constant `SITE_FILE`, on purpose not a setting, an environment variable or an
option: any of those would let a caller name a file of their own choosing (a root-owned file can
still be the wrong one). Tests and tools pass another path in (`load_site_file(path)`,
`cli_identity(…, site_file=path)`); the CLI always reads `SITE_FILE`.

It holds `admins:` (Unix logins, who may act for others at the CLI) and the site's defaults for the
settings everyone shares, so a site configures the CLI once: `policy_file`, `default_backend`,
`slurm:` and `k8s:` (bot/settings.py reads them below its other sources: a `CONCIERGE_*` variable or
the file named by `CONCIERGE_CONFIG` still wins). Never a secret: every user can read the file, so
the keys that hold one (Slack tokens, the database URL with its password, the model's API key) are
not accepted here, and unknown keys are refused rather than silently ignored.

`service: {url: …}` names the concierge service the login nodes use (bot/remote/): with it the
CLI's person-facing commands go there, the caller proven by MUNGE, and without it the CLI runs
standalone on its own store. A URL, never a secret: MUNGE's key stays munged's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backends.errors import ConfigurationError

SITE_FILE = Path("/etc/gpu-concierge/site.yaml")
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


class ServiceAddress(BaseModel):
    """Where the login nodes' CLI finds the concierge service (`concierge serve`'s login listener)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    timeout_s: float = Field(default=120.0, gt=0)  # a submit waits on the cluster's answer

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")) or "@" in url:
            raise ValueError(f"must be an http:// or https:// URL without a user or password (got {url!r})")
        return url.rstrip("/")


class SiteFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    admins: tuple[str, ...] = ()  # Unix logins that may act for anyone at the CLI (`--as`, `users map`)
    # Defaults for the settings of the same names (checked there, e.g. `slurm: {default_partition: gpu}`).
    policy_file: Path | None = None
    default_backend: Literal["slurm", "k8s"] | None = None
    slurm: dict[str, Any] | None = None
    k8s: dict[str, Any] | None = None
    service: ServiceAddress | None = None  # the login nodes' CLI uses this service (bot/remote/)

    def settings(self) -> dict[str, Any]:
        """The settings this file sets, as a settings source gives them (what it leaves out, left out)."""
        return self.model_dump(exclude={"admins", "service"}, exclude_none=True)


_KEYS = "admins, policy_file, default_backend, slurm, k8s and service"


def load_site_file(path: Path = SITE_FILE) -> SiteFile:
    """The site file at `path`, checked to be root's alone; an empty `SiteFile` when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return SiteFile()
    except OSError as e:
        raise ConfigurationError(
            f"cannot read the site file {path}: {e.strerror}. It must be a regular file owned by root "
            "(not a symbolic link) and readable by everyone who runs concierge (chmod 644)."
        ) from e
    with os.fdopen(fd, "rb") as opened:
        _check_only_root_can_change(path, os.fstat(opened.fileno()))
        text = opened.read()
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigurationError(f"the site file {path} is not valid YAML: {e}") from e
    if loaded is None:
        return SiteFile()
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"the site file {path} must hold a mapping, e.g. `admins: [alice]`")
    try:
        return SiteFile.model_validate(loaded)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConfigurationError(
            f"the site file {path} is not valid ({problems}); it holds only {_KEYS}, never a secret (every "
            "user can read it): Slack tokens, the database URL and API keys go in root's environment or "
            "the file named by CONCIERGE_CONFIG"
        ) from e


def _check_only_root_can_change(path: Path, opened: os.stat_result) -> None:
    if not stat.S_ISREG(opened.st_mode):
        raise ConfigurationError(f"the site file {path} is not a regular file; make it one, owned by root")
    _refuse_unless_roots(path, opened, "file")
    for directory in path.absolute().parents:
        _refuse_unless_roots(directory, os.stat(directory), "directory")


def _refuse_unless_roots(path: Path, found: os.stat_result, what: str) -> None:
    sticky = stat.S_ISDIR(found.st_mode) and found.st_mode & stat.S_ISVTX
    if found.st_uid != 0:
        raise ConfigurationError(
            f"the site file is not trusted: the {what} {path} belongs to uid {found.st_uid}, not root, so "
            f"someone other than root could change who the admins are. Fix it as root: chown root {path}"
        )
    if found.st_mode & _WRITABLE_BY_OTHERS and not sticky:
        raise ConfigurationError(
            f"the site file is not trusted: the {what} {path} is writable by its group or by everyone, so "
            f"someone other than root could change who the admins are. Fix it as root: chmod go-w {path}"
        )
