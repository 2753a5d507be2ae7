"""`concierge --help` and `concierge parse` start without the engine, the store or any client.

Each runs in a fresh interpreter, through the installed entry point's `run`, and reports the
modules it imported: a new top-level import of SQLAlchemy, pydantic-settings, a backend, LangChain,
Slack or Kubernetes anywhere on their path fails here (bench/cli_startup.py times them).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from bot.cli.main import cli
from tests.helpers.startup import probe_argv, probed


def imported(*argv: str) -> list[str]:
    done = subprocess.run(probe_argv(*argv), capture_output=True, text=True, timeout=60)
    code, _, heavy = probed(done.stderr)
    assert code == 0, done.stderr
    return heavy


@pytest.mark.parametrize(
    "argv", [("--help",), ("parse", "2 a100 for 4 hours to run python train.py"), ("parse", "--help")]
)
def test_help_and_parse_import_nothing_heavy(argv: tuple[str, ...]) -> None:
    assert imported(*argv) == []


def test_parse_still_reads_with_the_grammar() -> None:
    assert "bot.understanding.grammar" not in imported("--help")  # sanity: the probe sees imports
    done = subprocess.run(probe_argv("parse", "--json", "2 a100 for 4 hours"), capture_output=True, text=True)
    assert json.loads(done.stdout)["gpus"] == 2


@pytest.mark.parametrize("name", ["chat", "digest", "agent", "doctor"])
def test_a_command_kept_elsewhere_is_listed_with_its_own_help(name: str) -> None:
    stand_in = cli.commands[name]
    real = stand_in.command()  # type: ignore[attr-defined]
    assert stand_in.short_help == real.help
    assert real.name == name
