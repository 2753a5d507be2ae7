"""The installed `concierge` console script run as a person would, and waiting on the local Slurm."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.as_user import as_user

CONCIERGE = str(Path(sys.executable).with_name("concierge"))


def cli_env(home: Path, database_url: str | None = None, **settings: str) -> dict[str, str]:
    """This environment without the machine's CONCIERGE_ settings and KUBECONFIG: HOME, the database (a
    SQLite file in `home` unless given) and each CONCIERGE_ setting given (`LLM_URL=…`) as the test says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONCIERGE_", "KUBECONFIG"))}
    env |= {f"CONCIERGE_{name}": value for name, value in settings.items()}
    env["CONCIERGE_DATABASE_URL"] = database_url or f"sqlite:///{home / 'concierge.db'}"
    return env | {"HOME": str(home)}


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    env: dict[str, str]

    def __call__(self, *args: str, user: str | None = None) -> Result:
        argv = [CONCIERGE, *args]
        if user is None:
            done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60, check=False)
        else:  # the CLI run by that Unix user, not by root acting for them
            with as_user(user, argv) as theirs:
                done = subprocess.run(theirs, env=self.env, capture_output=True, text=True, timeout=60)
        return Result(done.returncode, done.stdout, done.stderr)

    def submit(self, who: str, text: str) -> str:
        result = self("--as", who, "ask", "--yes", text)
        assert result.code == 0, result.err
        match = re.search(r"Submitted job (\S+) \(request", result.out)
        assert match, result.out
        return match.group(1)


def squeue_field(job_id: str, field: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "-j", job_id, "-o", field], capture_output=True, text=True, check=True
    ).stdout.strip()


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")
