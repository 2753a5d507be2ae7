"""The README's CLI block is true: every `concierge …` line names commands that exist and options
those commands take, and the commands said to take `--backend` do."""

from __future__ import annotations

import re
from pathlib import Path

import click

from bot.cli.main import cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _real(command: click.Command) -> click.Command:
    return command.command() if hasattr(command, "where") else command  # type: ignore[attr-defined]


def _resolved(words: list[str]) -> tuple[click.Command, list[str]]:
    """The command the words name (`users map`), and the words after it."""
    command: click.Command = cli
    while words and isinstance(command, click.Group) and words[0] in command.commands:
        command = _real(command.commands[words.pop(0)])
    return command, words


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _readme_lines() -> list[str]:
    block = README.split("## Using the CLI", 1)[1].split("```", 2)[1]
    return [line.split(" # ", 1)[0] for line in block.splitlines() if line.startswith("concierge ")]


def test_every_readme_command_takes_the_options_it_shows() -> None:
    lines = _readme_lines()
    assert len(lines) > 20
    wrong = []
    for line in lines:
        # "policy show | policy check": each alternative after a bar is a command of its own.
        for part in line.removeprefix("concierge ").split(" | "):
            words = part.split()
            global_options = [w for w in words if w in _options(cli)]
            command, rest = _resolved([w for w in words if w not in global_options])
            if command is cli and part.strip().startswith(("--check", "--store", "--serve")):
                continue  # `agent --check | --store | --serve`: alternatives of the command before
            named = re.findall(r"--[a-z][a-z-]*", " ".join(rest))
            wrong += [f"{line}: {option}" for option in named if option not in _options(command)]
            if command is cli and not global_options:
                wrong.append(f"{line}: no such command")
    assert wrong == []


def test_the_commands_said_to_take_backend_do() -> None:
    sentence = re.search(r"((?:`\w+`, )+`\w+` and `\w+`) take `--backend", README)
    assert sentence, "the README says which commands take --backend"
    named = re.findall(r"`(\w+)`", sentence.group(1))
    assert [n for n in named if "--backend" not in _options(_real(cli.commands[n]))] == []
