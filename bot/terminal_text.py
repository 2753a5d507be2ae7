"""Text for a terminal: stored or remote text printed without its control and escape sequences.

What the CLI prints comes partly from other people and other systems: request text typed on Slack,
job names and reasons from the scheduler, a model's prose. Printed raw, an escape sequence in it
is obeyed by the reader's terminal: it can clear the screen, rewrite a line that was printed
(`\\r`, cursor moves) so a row seems to say something else, set the window title, or make a
hyperlink whose text hides its target (OSC 8). So every CLI print of such text goes through
`printable`, which removes ANSI CSI/OSC/DCS sequences and other escapes, every C0 and C1 control
character except newline and tab, and the Unicode bidirectional overrides that reorder what is
shown ("Trojan Source"). Removed, not replaced: what is left reads as the text itself.
"""

from __future__ import annotations

import re

import click

_UNPRINTABLE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: cursor moves, colours, erase
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, DCS, SOS, PM, APC strings up to BEL/ST
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # 8-bit CSI
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # 8-bit OSC, DCS, SOS, PM, APC
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # C0 but tab and newline, DEL, C1
    r"|[\u202a-\u202e\u2066-\u2069]"  # bidirectional embeddings, overrides and isolates
)


def printable(text: str) -> str:
    return _UNPRINTABLE.sub("", text)


def is_printable(text: str) -> bool:
    """True when `printable` would change nothing (one scan, for text that is mostly clean)."""
    return _UNPRINTABLE.search(text) is None


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """`click.echo` of text that may come from people or other systems: `printable` first."""
    click.echo(printable(text), err=err, nl=nl)
