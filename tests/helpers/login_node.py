"""A login node in a test: the installed `concierge` run as alice or bob (runuser), with root's site
file naming the service, and credentials made by the real munged.

The CLI reads only /etc/gpu-concierge/site.yaml (bot/site_file.py), so each run is in a private mount
namespace (unshare) where the test's site directory is mounted there; the machine's /etc stays as it
is. Where this interpreter lives under a directory closed to other users (/root/.pyenv here), the
same namespace shows that directory, and nothing else of root's home, through an empty 0711
directory, so alice can run the interpreter without the test changing the real /root.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.remote import protocol
from bot.site_file import SITE_FILE
from tests.helpers.cli import CONCIERGE, Result

# $0 = the site directory, $1 = an opened stand-in for /root (or ""); then the command.
_NAMESPACE = """
mount --bind "$0" /etc/gpu-concierge || exit 90
if [ -n "$1" ]; then
  mount --bind "/root/$2" "$1/$2" && mount --rbind "$1" /root || exit 91
fi
shift 2
exec "$@"
"""


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


@contextmanager
def root_home_opened() -> Iterator[tuple[str, str]]:
    """(stand-in directory, the entry of /root it shows) when this interpreter is under /root."""
    real = Path(os.path.realpath(sys.executable))
    if not real.is_relative_to("/root"):
        yield "", ""
        return
    entry = real.relative_to("/root").parts[0]
    with tempfile.TemporaryDirectory(prefix="root-stand-in-") as stand_in:
        os.chmod(stand_in, 0o711)
        (Path(stand_in) / entry).mkdir()
        yield stand_in, entry


@dataclass
class LoginNode:
    site: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, user: str, *argv: str, stdin: str | None = None, timeout: float = 90) -> Result:
        """`argv` run as `user` with the site file in place (argv[0] "concierge" is the installed one)."""
        with root_home_opened() as opened:
            done = subprocess.run(
                self._argv(opened, user, argv),
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
        with root_home_opened() as opened:
            argv = self._argv(opened, user, ("concierge", *args))
            pid, fd = pty.fork()
            if pid == 0:  # the child: the login node's command, with the test's environment
                os.execvpe(argv[0], argv, self.env)
            printed, answered = b"", False
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal: it has exited
                    break
                if not chunk:
                    break
                printed += chunk
                if not answered and prompt in printed:
                    os.write(fd, answer.encode() + b"\n")
                    answered = True
            os.waitpid(pid, 0)
        return printed.decode(errors="replace")

    def _argv(self, opened: tuple[str, str], user: str, argv: tuple[str, ...]) -> list[str]:
        SITE_FILE.parent.mkdir(mode=0o755, exist_ok=True)  # the mount point
        command = [CONCIERGE if argv[0] == "concierge" else argv[0], *argv[1:]]
        stand_in, entry = opened
        namespace = ["unshare", "--mount", "sh", "-c", _NAMESPACE, str(self.site), stand_in, entry]
        return [*namespace, "runuser", "-u", user, "--", *command]


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
