"""What the CLI prints of stored or remote text: no control or escape sequences (bot/terminal_text.py)."""

from __future__ import annotations

import pytest

from bot import text_render as render
from bot.terminal_text import is_printable, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),  # CSI
        ("\x1b]8;;https://evil.example\x07docs\x1b]8;;\x07", "docs"),  # OSC 8 hyperlink, BEL-terminated
        ("\x1b]0;root@gpu\x1b\\title", "title"),  # OSC, ST-terminated
        ("\x1bP+q544e\x1b\\dcs", "dcs"),  # DCS
        ("\x9b31mred\x9d0;t\x9cc1", "redc1"),  # 8-bit CSI and OSC
        ("over\rwrite\x08\x07\x00\x7f", "overwrite"),
        ("\x1bcreset \x1b7save", "reset save"),
        ("cut \x1b[31", "cut "),  # a sequence cut short
        ("name\u202etxt.exe", "nametxt.exe"),  # bidirectional override
        ("ünïcödé 漢字 — “quotes”", "ünïcödé 漢字 — “quotes”"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert is_printable(printable(raw))


def test_a_table_with_escapes_in_a_cell_still_lines_up() -> None:
    shown = render.table(("A", "B"), [("\x1b[31mred\x1b[0m", "x"), ("plain", "y")])
    assert shown.splitlines() == ["A      B", "red    x", "plain  y"]
