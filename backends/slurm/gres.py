"""GPU counts out of Slurm's GRES and TRES strings, whatever the version wrote.

The same fact is spelled many ways (FIELD_NOTES, src/common/slurm_opt.c and gres.c):
  node config / sinfo Gres     `gpu:a100:2`, `gpu:a100:2(S:0-1)`, `gpu:2`
  sinfo GresUsed               `gpu:a100:2(IDX:0-1)`, `gpu:l40s:0(IDX:N/A)`, `gpu:a100:3(IDX:0,2-3)`
  job tres_per_node ≤ 23.02    `gres:gpu:a100:2`;   ≥ 23.11  `gres/gpu:a100:2`
  TRES strings                 `gres/gpu=2`, `gres/gpu:a100=2` (alloc strings list both)
  nothing                      `(null)`, `N/A`, ``
Items are comma separated, but an index list inside parentheses may hold commas too, so the
split respects parentheses. Only the `gpu` GRES becomes a `GpuAsk`; `shard`, `mps` and site
GRES are ignored here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from backends.types import GpuAsk

_EMPTY = frozenset({"", "(null)", "n/a", "none"})
GRES_PREFIXES = ("gres:", "gres/")
_TRES_ITEM = re.compile(r"^(?P<name>[^:=]+)(?::(?P<type>[^=]+))?=(?P<count>\d+)$")


def split_items(text: str) -> list[str]:
    """Comma separated, but an index list inside parentheses holds commas too."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _strip_detail(item: str) -> str:
    """`gpu:a100:2(IDX:0-1)` → `gpu:a100:2`."""
    paren = item.find("(")
    return item[:paren] if paren >= 0 else item


def _parse_item(item: str) -> tuple[str, str | None, int] | None:
    """(name, type, count) of one item, or None when it is not readable as a count."""
    item = _strip_detail(item).strip()
    for prefix in GRES_PREFIXES:
        if item.startswith(prefix):
            item = item[len(prefix) :]
            break
    tres = _TRES_ITEM.match(item)
    if tres:
        return tres["name"], tres["type"], int(tres["count"])
    parts = item.split(":")
    name = parts[0]
    if not name:
        return None
    if len(parts) == 1:
        return name, None, 1
    if len(parts) == 2:
        return (name, None, int(parts[1])) if parts[1].isdigit() else (name, parts[1], 1)
    # name:type[:flags…]:count — flags such as no_consume sit between type and count.
    count = parts[-1]
    if not count.isdigit():
        return None
    return name, parts[1], int(count)


@lru_cache(maxsize=4096)
def parse_gpus(text: str | None) -> tuple[GpuAsk, ...]:
    """GPUs named in a GRES/TRES string, in order. Counts of 0 are kept (a type with none used).

    Cached: a queue of thousands of jobs repeats a handful of distinct strings, and the result
    is an immutable tuple of frozen models."""
    if text is None or text.strip().lower() in _EMPTY:
        return ()
    asks: list[GpuAsk] = []
    untyped_tres: list[GpuAsk] = []
    typed_seen = False
    for item in split_items(text):
        parsed = _parse_item(item)
        if parsed is None:
            continue
        name, gpu_type, count = parsed
        if name != "gpu":
            continue
        ask = GpuAsk(count=count, gpu_type=gpu_type or None)
        if gpu_type:
            typed_seen = True
            asks.append(ask)
        elif "=" in item:
            untyped_tres.append(ask)  # TRES totals repeat the typed counts; keep only if alone
        else:
            asks.append(ask)
    if not typed_seen:
        asks.extend(untyped_tres)
    return tuple(asks)


def total_gpus(asks: tuple[GpuAsk, ...]) -> int:
    return sum(ask.count for ask in asks)


def gres_option(count: int, gpu_type: str | None) -> str:
    """The `--gres` value for N GPUs per node, typed or not."""
    return f"gpu:{gpu_type}:{count}" if gpu_type else f"gpu:{count}"
