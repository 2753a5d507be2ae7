"""What a person sees at the CLI when the words cannot be taken as written: the question back, with
nothing planned, submitted or cancelled; and commands kept exactly as typed.

The installed console script in a subprocess, as a person runs it. Nothing here reaches Slurm: a
question back is answered before any plan is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import Cli, cli_env


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(cli_env(tmp_path))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("2 A100s for 4 Stunden to run python train.py", ['could not read "4 Stunden"']),
        ("2 or 4 A100s for 3 hours, python x.py", ['"2 or 4 A100s"', "which is it?"]),
        ("1 H100 until tomorrow morning, python x.py", ['"until tomorrow morning"', "how long"]),
        ("write a haiku about H100s", ["not a request", "2 A100s for 4 hours"]),
        ("cancel 1201 and 1202", ["nothing was cancelled", '"cancel 1201", then "cancel 1202"']),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_ask_says_what_it_did_not_understand_and_does_nothing(
    cli: Cli, text: str, said: list[str], dry_run: bool
) -> None:
    result = cli("--as", "alice", "ask", *(["--dry-run"] if dry_run else []), text)
    assert result.code == 2, result
    assert all(words in result.err for words in said), result.err
    assert "sbatch" not in result.out and "Submitted" not in result.out


def test_parse_prints_the_question_back_with_what_was_read(cli: Cli) -> None:
    result = cli("parse", "--json", "2 A100s for 4 Stunden to run python train.py")
    assert result.code == 0, result.err
    printed = json.loads(result.out)
    assert printed["intent"] == "unknown" and printed["time_limit_minutes"] is None
    assert (printed["gpus"], printed["gpu_type"], printed["command"]) == (2, "a100", "python train.py")
    assert '"4 Stunden"' in printed["message"]


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("```python train.py --epochs 50``` on 1 gpu", "python train.py --epochs 50"),
        ("1 gpu, command is python x.py", "python x.py"),
        ("1 gpu for 1 hour, run:\npython prep.py\npython train.py", "python prep.py\npython train.py"),
    ],
)
def test_parse_keeps_the_command_as_typed(cli: Cli, text: str, command: str) -> None:
    result = cli("parse", "--json", text)
    assert result.code == 0, result.err
    assert json.loads(result.out)["command"] == command
