"""How a length of time is written, in one place for every door, backend and policy.

Two spellings, each for its reader. `duration` is for people, in sentences: a wall time, a limit, a
wait, how long a job ran ("1 h 30 min", "2 days 4 h", "45 s"); every part is kept, so a limit reads
exactly, and minutes are not padded, because it is prose, not a clock. `clock` is `D-HH:MM:SS`:
Slurm's own `--time` syntax and the terminal's ELAPSED/LIMIT column, which people compare with
squeue's. It lives in backends/ because backends and policies write sentences too and may not
import the bot; the bot imports it from here. `plural` is their one/many choice ("1 day", "2 nodes").
"""

from __future__ import annotations

from functools import lru_cache

_DAY_S = 24 * 3600


def duration(*, minutes: float = 0, seconds: float = 0) -> str:
    """`minutes=90` → `1 h 30 min`, `minutes=2880` → `2 days`, `seconds=45` → `45 s` (never negative)."""
    total = max(int(minutes * 60 + seconds), 0)
    if total < 60:
        return f"{total} s" if total else "0 min"
    days, rest = divmod(total, _DAY_S)
    hours, rest = divmod(rest, 3600)
    mins = rest // 60
    parts = [f"{days} {plural(days, 'day', 'days')}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{mins} min"] if mins else []
    return " ".join(parts)


def plural(amount: int, one: str, many: str) -> str:
    return one if amount == 1 else many


@lru_cache(maxsize=8192)  # a queue's time limits repeat; its elapsed times mostly do not, cheaply
def clock(seconds: int) -> str:
    """`5400` → `01:30:00`, `93784` → `1-02:03:04`."""
    days, rest = divmod(seconds, _DAY_S)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{time}" if days else time
