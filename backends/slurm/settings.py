"""Settings of the Slurm backend.

They live with the backend, not in bot/, so the backend depends on nothing of the doors; the
bot's typed `Settings` nests them (`CONCIERGE_SLURM__…`) and passes them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, SecretStr


class SlurmSettings(BaseModel):
    bin_dir: Path | None = None  # where sbatch/squeue live; None: found on PATH
    command_timeout_s: float = 30.0
    default_partition: str | None = None
    output_pattern: str = "concierge-%x-%j.out"  # relative paths land in the submitter's working dir
    workdir: str | None = None  # --chdir for jobs; None: the submitting user's home (as root) or cwd
    submit_mode: Literal["auto", "uid", "self"] = "auto"  # auto: --uid when running as root
    slurm_conf: Path | None = None  # SLURM_CONF for the commands; None: the client's default
    # How the bot talks to Slurm: `cli` runs sbatch/squeue/… (a login node with munge); `rest` speaks
    # to slurmrestd (a container without Slurm's clients). pyslurm is not offered: PyPI builds it
    # for Slurm 25.11 only, and it cannot be built or tested against other versions (22.05 here).
    driver: Literal["cli", "rest"] = "cli"
    rest_url: str = "http://127.0.0.1:6820"
    # The JWT source, one of: a token of SlurmUser/root (may act for every person, e.g. from a
    # Secret), or a command that prints a token for `{user}` (`scontrol token username={user}`).
    rest_token: SecretStr | None = None
    rest_token_command: tuple[str, ...] = ()
    rest_user: str | None = None  # who reads the queue and cancels for admins; None: the bot's Unix user
