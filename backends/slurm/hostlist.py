"""Slurm's compressed host lists (`gpu[01-04,07],login1`) expanded to node names.

Squeue prints a job's nodes compressed; capacity is per node name. Ranges keep their zero
padding (`[08-10]` → 08, 09, 10), and several bracket groups in one name multiply out.
"""

from __future__ import annotations

import re

_BRACKET = re.compile(r"\[([^\]]*)\]")


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _expand_range(spec: str) -> list[str]:
    values: list[str] = []
    for piece in spec.split(","):
        if "-" in piece:
            low, high = piece.split("-", 1)
            width = len(low)
            values.extend(str(n).zfill(width) for n in range(int(low), int(high) + 1))
        elif piece:
            values.append(piece)
    return values


def _expand_name(name: str) -> list[str]:
    match = _BRACKET.search(name)
    if match is None:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    return [head + value + rest for value in _expand_range(match[1]) for rest in _expand_name(tail)]


def expand_hostlist(text: str | None) -> list[str]:
    if not text or text in ("(null)", "N/A"):
        return []
    try:
        return [host for part in _split_top_level(text) for host in _expand_name(part)]
    except ValueError:
        return [text]  # not a list we understand; keep it whole rather than guess
