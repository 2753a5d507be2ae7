"""A login node in a test: the installed `concierge` run as alice or bob (runuser), with root's site
file naming the service, and credentials made by the real munged.

The CLI reads only /etc/gpu-concierge/site.yaml (bot/site_file.py), so each run mounts the test's
site directory there in a private mount namespace (tests/helpers/as_user.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.remote import protocol
from tests.helpers.as_user import as_user
from tests.helpers.cli import CONCIERGE, Result
from tests.helpers.terminal import answered_at_prompt


def write_site(directory: Path, text: str) -> Path:
    """A root-owned site directory (0755) holding site.yaml (0644) with `text`."""
    directory.mkdir(mode=0o755, exist_ok=True)
    directory.chmod(0o755)
    site = directory / "site.yaml"
    site.write_text(text)
    site.chmod(0o644)
    return directory


def service_site(directory: Path, url: str) -> Path:
    return write_site(directory, f"service: {{url: {url}}}\n")


@dataclass
class LoginNode:
    site: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, user: str, *argv: str, stdin: str | None = None, timeout: float = 90) -> Result:
        """`argv` run as `user` with the site file in place (argv[0] "concierge" is the installed one)."""
        with as_user(user, self._command(argv), self.site) as command:
            done = subprocess.run(
                command,
                env=self.env,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        return Result(done.returncode, done.stdout, done.stderr)

    def concierge(self, user: str, *args: str) -> Result:
        return self.run(user, "concierge", *args)

    def in_terminal(self, user: str, *args: str, answer: str, prompt: bytes = b"Submit this job?") -> str:
        """`concierge ARGS` as `user` on a pseudo-terminal, `answer` typed at its prompt; all it printed."""
        with as_user(user, self._command(("concierge", *args)), self.site) as command:
            return answered_at_prompt(command, self.env, answer, prompt)

    @staticmethod
    def _command(argv: tuple[str, ...]) -> list[str]:
        return [CONCIERGE if argv[0] == "concierge" else argv[0], *argv[1:]]


def login_env(home: Path) -> dict[str, str]:
    """A login node's environment: no CONCIERGE_ settings but a database URL that must stay unused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONCIERGE_", "KUBECONFIG"))}
    home.mkdir(exist_ok=True)
    home.chmod(0o777)
    return env | {"HOME": str(home), "CONCIERGE_DATABASE_URL": f"sqlite:///{home / 'never-made.db'}"}


def credential(user: str, payload: bytes, *munge_args: str) -> str:
    """A credential from the real munged, made as `user` (root may add `-U alice`)."""
    argv = ["munge", *munge_args] if user == "root" else ["runuser", "-u", user, "--", "munge", *munge_args]
    made = subprocess.run(argv, input=payload, capture_output=True, timeout=10, check=True)
    return made.stdout.decode().strip()


def post(url: str, path: str, body: bytes, credential: str | None) -> tuple[int, dict[str, Any]]:
    """One request to the service, as the test builds it (status, JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if credential is not None:
        headers["Authorization"] = f"{protocol.SCHEME} {credential}"
    request = urllib.request.Request(url + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
