"""Running the Slurm commands: argv lists only, a clean environment, a timeout, a counter.

- Never a shell: every argument is its own argv element and the script travels on stdin, so no
  text of a person's can become shell syntax on our side.
- The environment is built, not inherited: PATH, `TZ=UTC` (text output's instants are then UTC),
  `LC_ALL=C` and SLURM_CONF when configured. Inheriting would let `SBATCH_*`/`SQUEUE_FORMAT`/
  `SLURM_TIME_FORMAT` change what the commands do, and would hand the bot's own variables (tokens)
  to the jobs; jobs get the person's login environment instead (`--export=NONE` in the script).
- `as_user` runs a command as that Unix user through `runuser -u USER --` (root only), so the
  controller itself enforces who may cancel what.
- `command_count` counts the commands run; each one is at least one controller RPC (FIELD_NOTES:
  keep those O(1) per poll), which the tests and the benchmark read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from backends.errors import BackendUnavailable, PermissionDenied
from backends.slurm.accounts import PasswdAccounts, UnixAccounts
from backends.slurm.cli_errors import RETRY_AFTER_S, translate_failure
from backends.slurm.settings import SlurmSettings

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class CommandRunner(Protocol):
    command_count: int

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:
        """stdout of the command (with stderr appended when asked); raises our errors on failure."""
        ...


class SlurmCli:
    """`CommandRunner` over the real Slurm binaries."""

    def __init__(
        self,
        settings: SlurmSettings,
        *,
        accounts: UnixAccounts | None = None,
        running_as_root: bool | None = None,
    ) -> None:
        self._settings = settings
        self._accounts = accounts or PasswdAccounts()
        self._root = os.geteuid() == 0 if running_as_root is None else running_as_root
        self.command_count = 0

    def _program(self, name: str) -> str:
        if self._settings.bin_dir is not None:
            candidate = Path(self._settings.bin_dir) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
            raise BackendUnavailable(
                f"{name} is not in {self._settings.bin_dir} (the configured slurm.bin_dir); install "
                "the Slurm client commands (Debian: apt install slurm-client) or fix slurm.bin_dir"
            )
        found = shutil.which(name) or shutil.which(name, path=SYSTEM_PATH)
        if found is None:
            raise BackendUnavailable(
                f"{name} was not found on PATH: the Slurm client commands are not installed here "
                "(Debian: apt install slurm-client) or set slurm.bin_dir to where they are"
            )
        return found

    def _environment(self) -> dict[str, str]:
        path = SYSTEM_PATH
        if self._settings.bin_dir is not None:
            path = f"{self._settings.bin_dir}:{path}"
        environment = {"PATH": path, "TZ": "UTC", "LC_ALL": "C"}
        if self._settings.slurm_conf is not None:
            environment["SLURM_CONF"] = str(self._settings.slurm_conf)
        return environment

    def _as_user_prefix(self, as_user: str | None) -> list[str]:
        if as_user is None or as_user == self._accounts.current().name:
            return []
        if not self._root:
            raise PermissionDenied(
                f"the bot runs as {self._accounts.current().name}, not root, so it cannot act as "
                f"{as_user}; run the command yourself, or ask an admin to run the bot as root"
            )
        runuser = shutil.which("runuser", path=SYSTEM_PATH)
        if runuser is None:
            raise BackendUnavailable("runuser (util-linux) is missing, so commands cannot run as the person")
        return [runuser, "-u", as_user, "--"]

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        as_user: str | None = None,
        include_stderr: bool = False,
    ) -> str:
        if not argv:
            raise ValueError("a command needs at least its program name")
        name = argv[0]
        full = [*self._as_user_prefix(as_user), self._program(name), *argv[1:]]
        timeout = self._settings.command_timeout_s
        self.command_count += 1
        try:
            completed = subprocess.run(
                full,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self._environment(),
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise BackendUnavailable(
                f"{name} did not answer within {timeout:g} s; Slurm's controller is overloaded or "
                "unreachable. Try again in a minute.",
                retry_after=RETRY_AFTER_S,
            ) from e
        except OSError as e:
            raise BackendUnavailable(f"{name} could not be started: {e.strerror or e}") from e
        if completed.returncode != 0:
            raise translate_failure(name, completed.returncode, completed.stderr or completed.stdout)
        if include_stderr:
            return completed.stdout + completed.stderr
        return completed.stdout
