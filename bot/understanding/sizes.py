"""Memory sizes ("64G", "48Gi", "32GB", "512MB", "1.5TB") read as whole gigabytes, rounded up.

Rounded up because a job given less memory than it asked for dies, and one given a little more
does not. G and Gi are taken as the same unit: Slurm's --mem "G" is already 1024³ bytes and
Kubernetes nodes are sized in Gi, so the 7 % between them would only make every answer odd.
A lone "M" is read as megabytes only when a memory word follows ("512M ram"): "90m" is minutes.
"""

from __future__ import annotations

import math
import re

from bot.understanding.lazy_re import lazy

_UNITS_IN_GB = {"t": 1024.0, "g": 1.0, "m": 1 / 1024}

# Amount and unit; groups are named so one regex that embeds this once can read both.
MEMORY_AMOUNT = (
    r"(?P<amount>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>tib|tb|ti|t|terabytes?|gib|gb|gi|g|gigs?|gigabytes?|mib|mb|mi|megabytes?)(?![a-z0-9])"
)
_AMOUNT_RE = lazy(rf"^\s*{MEMORY_AMOUNT}\s*$", re.IGNORECASE)


def memory_gb(amount: str, unit: str) -> int | None:
    """Whole gigabytes for an amount and unit ("512", "MB" → 1), or None when the unit is not memory."""
    try:
        value = float(amount)
    except ValueError:
        return None
    scale = _UNITS_IN_GB.get(unit.strip().lower()[:1])
    if scale is None or not math.isfinite(value):
        return None
    return math.ceil(value * scale - 1e-9)


def parse_memory_gb(text: str) -> int | None:
    """Whole gigabytes for text that is one size and nothing else ("64G", "48Gi", "512MB"), else None."""
    found = _AMOUNT_RE.match(text)
    if found is None:
        return None
    return memory_gb(found.group("amount"), found.group("unit"))
