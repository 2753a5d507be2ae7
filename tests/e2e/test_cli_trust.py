"""The CLI door run by another Unix user: their own environment never makes them an admin.

The installed CLI runs in a subprocess as `nobody` or `alice` (`runuser -u …`), as a person on a
login node would run it, against a real SQLite store in a directory they can write. No cluster is
involved: `users map`, `history` and identity resolution need only the store.

The virtual environment's interpreter may sit where other users cannot reach it (pyenv under
/root); then the system's interpreter of the same Python version runs the same code, with the
environment's site-packages and the checkout on PYTHONPATH. Without either the tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.store import Store
from tests.helpers.cli import Result

REPO = Path(__file__).resolve().parents[2]
RUN_CLI = "import sys; from bot.cli.main import main; sys.argv[0] = 'concierge'; sys.exit(main())"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="running the CLI as another user needs root (runuser)"
)


def _python_for(user: str, env: dict[str, str]) -> str | None:
    """An interpreter `user` can run that imports this checkout's CLI, or None."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}", "/usr/bin/python3"):
        probe = [
            "runuser", "-u", user, "--", candidate, "-c",
            f"import sys, bot.cli.main; assert sys.version.startswith('{version}.')",
        ]  # fmt: skip
        if subprocess.run(probe, env=env, capture_output=True, check=False, timeout=60).returncode == 0:
            return candidate
    return None


@dataclass
class Cli:
    env: dict[str, str]
    database_url: str
    python: str

    def __call__(self, *args: str, user: str, env: dict[str, str] | None = None) -> Result:
        argv = [self.python, "-c", RUN_CLI, *args]
        if user != "root":
            argv = ["runuser", "-u", user, "--", *argv]
        done = subprocess.run(
            argv, env=self.env | (env or {}), capture_output=True, text=True, timeout=60, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli() -> Iterator[Cli]:
    # Not pytest's tmp_path: its parents are root's alone, and nobody must reach the database.
    shared = Path(tempfile.mkdtemp(prefix="concierge-trust-"))
    try:
        shared.chmod(0o777)
        paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], str(REPO)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
        env |= {"HOME": str(shared), "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}
        env["CONCIERGE_DATABASE_URL"] = f"sqlite:///{shared / 'concierge.db'}"
        python = _python_for("nobody", env)
        if python is None:
            pytest.skip(
                f"no interpreter of Python {sys.version_info[:2]} that nobody may run imports the CLI"
            )
        yield Cli(env, env["CONCIERGE_DATABASE_URL"], python)
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def mapped(cli: Cli, requester: str) -> object:
    store = Store(cli.database_url)
    try:
        return store.identity_for(requester)
    finally:
        store.close()


def test_concierge_admins_in_the_callers_environment_maps_nobody(cli: Cli, tmp_path: Path) -> None:
    attempt = ("users", "map", "U0X", "--unix", "alice", "--admin")
    refused = cli(*attempt, user="nobody", env={"CONCIERGE_ADMINS": '["nobody"]'})
    assert refused.code == 3, refused.err
    assert "only admins may map identities" in refused.err and "Traceback" not in refused.err
    # The same through a config file of the caller's own (CONCIERGE_CONFIG).
    config = Path(cli.env["HOME"]) / "mine.yaml"
    config.write_text("admins: [nobody]\n")
    refused = cli(*attempt, user="nobody", env={"CONCIERGE_CONFIG": str(config)})
    assert refused.code == 3, refused.err
    assert mapped(cli, "U0X") is None


def test_as_by_a_non_admin_is_refused_whatever_their_environment_says(cli: Cli) -> None:
    refused = cli("--as", "bob", "history", user="alice", env={"CONCIERGE_ADMINS": '["alice"]'})
    assert refused.code == 3, refused.err
    assert "only root or an admin may act as another person; you are alice" in refused.err
    assert "CONCIERGE_ADMINS names you, but it counts only when the concierge runs as root" in refused.err
    assert cli("history", user="alice").code == 0  # herself she may be


def test_an_admin_mapped_by_root_may_map_and_act_for_others(cli: Cli) -> None:
    made = cli("users", "map", "alice", "--unix", "alice", "--admin", user="root")
    assert made.code == 0, made.err
    Path(cli.database_url.removeprefix("sqlite:///")).chmod(0o666)
    done = cli("users", "map", "U0X", "--unix", "bob", user="alice")
    assert done.code == 0, done.err
    assert "Mapped U0X → unix=bob" in done.out
    acted = cli("--as", "bob", "history", user="alice")
    assert acted.code == 0, acted.err
