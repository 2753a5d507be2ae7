"""SlurmCli: argv without a shell, a built environment, the timeout, the counter, the errors.

The Slurm commands here are small executables in a temporary bin_dir standing in for the real
ones (the real ones are exercised in tests/integration/test_slurm_cluster.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.errors import BackendRejected, BackendUnavailable, PermissionDenied
from backends.slurm.accounts import UnixAccount
from backends.slurm.runner import SlurmCli
from backends.slurm.settings import SlurmSettings

REPORT = """#!/usr/bin/env python3
import json, os, sys
print(json.dumps({"argv": sys.argv[1:], "stdin": sys.stdin.read(), "env": dict(os.environ)}))
"""


class OneAccount:
    def __init__(self, name: str) -> None:
        self.account = UnixAccount(name, 1000, 1000, f"/home/{name}")

    def lookup(self, name: str) -> UnixAccount | None:
        return self.account if name == self.account.name else None

    def current(self) -> UnixAccount:
        return self.account


def bin_dir(tmp_path: Path, **programs: str) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for name, text in programs.items():
        program = directory / name
        program.write_text(text)
        program.chmod(0o755)
    return directory


def test_argv_stdin_and_a_built_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBATCH_PARTITION", "evil")  # would override #SBATCH lines if inherited
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-secret")
    settings = SlurmSettings(bin_dir=bin_dir(tmp_path, sbatch=REPORT), slurm_conf=tmp_path / "slurm.conf")
    runner = SlurmCli(settings, accounts=OneAccount("concierge"), running_as_root=False)
    seen = json.loads(runner.run(["sbatch", "--parsable", "a b; $(c)"], stdin="#!/bin/bash\ntrue\n"))
    assert seen["argv"] == ["--parsable", "a b; $(c)"]  # one element, no shell in between
    assert seen["stdin"] == "#!/bin/bash\ntrue\n"
    environment = seen["env"]
    assert environment["TZ"] == "UTC" and environment["LC_ALL"] == "C"
    assert environment["SLURM_CONF"] == str(tmp_path / "slurm.conf")
    assert "SBATCH_PARTITION" not in environment and "SLACK_BOT_TOKEN" not in environment
    assert runner.command_count == 1


def test_stderr_when_asked(tmp_path: Path) -> None:
    script = "#!/bin/sh\necho out\necho 'sbatch: Job 5 to start at 2026-01-01T00:00:00' >&2\n"
    runner = SlurmCli(SlurmSettings(bin_dir=bin_dir(tmp_path, sbatch=script)), running_as_root=False)
    assert runner.run(["sbatch"]) == "out\n"
    assert "Job 5 to start" in runner.run(["sbatch"], include_stderr=True)
    assert runner.command_count == 2


def test_timeout_is_unavailable_with_a_retry_hint(tmp_path: Path) -> None:
    settings = SlurmSettings(bin_dir=bin_dir(tmp_path, squeue="#!/bin/sh\nsleep 5\n"), command_timeout_s=0.3)
    with pytest.raises(BackendUnavailable, match=r"squeue did not answer within 0\.3 s") as raised:
        SlurmCli(settings, running_as_root=False).run(["squeue"])
    assert raised.value.retry_after


def test_missing_command(tmp_path: Path) -> None:
    runner = SlurmCli(SlurmSettings(bin_dir=bin_dir(tmp_path)), running_as_root=False)
    with pytest.raises(BackendUnavailable, match=r"sinfo is not in .* apt install slurm-client"):
        runner.run(["sinfo"])


def test_failures_are_translated(tmp_path: Path) -> None:
    failing = (
        "#!/bin/sh\n"
        "echo 'sbatch: error: Batch job submission failed: Invalid partition name specified' >&2\n"
        "exit 1\n"
    )
    runner = SlurmCli(SlurmSettings(bin_dir=bin_dir(tmp_path, sbatch=failing)), running_as_root=False)
    with pytest.raises(BackendRejected, match="Invalid partition name specified"):
        runner.run(["sbatch"])


def test_acting_as_someone_else_needs_root(tmp_path: Path) -> None:
    settings = SlurmSettings(bin_dir=bin_dir(tmp_path, scancel=REPORT))
    runner = SlurmCli(settings, accounts=OneAccount("concierge"), running_as_root=False)
    with pytest.raises(
        PermissionDenied, match="the bot runs as concierge, not root, so it cannot act as alice"
    ):
        runner.run(["scancel", "7"], as_user="alice")
    assert runner.command_count == 0  # nothing ran
    assert json.loads(runner.run(["scancel", "7"], as_user="concierge"))["argv"] == ["7"]  # itself: direct
