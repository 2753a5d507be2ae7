"""Every `concierge` command and group says what it does in `--help`, those kept in other modules
(`chat`, `digest`, `agent`) included, and so does each option: a new one without help fails here."""

from __future__ import annotations

from collections.abc import Iterator

import click

from bot.cli.main import cli


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    real = command.command() if hasattr(command, "where") else command  # type: ignore[attr-defined]
    yield path, real
    if isinstance(real, click.Group):
        for name, sub in real.commands.items():
            yield from _commands(sub, f"{path} {name}")


def test_every_command_group_and_option_has_help() -> None:
    found = dict(_commands(cli, "concierge"))
    assert {"concierge users unmap", "concierge policy check", "concierge digest"} <= found.keys()
    missing = [path for path, command in found.items() if not (command.help or "").strip()]
    missing += [
        f"{path} {option.opts[0]}"
        for path, command in found.items()
        for option in command.params
        if isinstance(option, click.Option) and not option.hidden and not option.help
    ]
    assert missing == []
