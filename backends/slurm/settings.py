"""Settings of the Slurm backend.

They live with the backend, not in bot/, so the backend depends on nothing of the doors; the
bot's typed `Settings` nests them (`CONCIERGE_SLURM__…`) and passes them in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel


class SlurmSettings(BaseModel):
    bin_dir: Path | None = None  # where sbatch/squeue live; None: found on PATH
    command_timeout_s: float = 30.0
    default_partition: str | None = None
    output_pattern: str = "concierge-%x-%j.out"  # relative paths land in the submitter's working dir
    workdir: str | None = None  # --chdir for jobs; None: the submitting user's home (as root) or cwd
    submit_mode: Literal["auto", "uid", "self"] = "auto"  # auto: --uid when running as root
    slurm_conf: Path | None = None  # SLURM_CONF for the commands; None: the client's default
