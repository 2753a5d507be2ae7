"""Kubernetes resource quantities ("500m", "512Gi", "1e3") as exact fractions.

The scheduler compares requests with allocatable capacity; fractions keep `0.1 + 0.2` CPU exact, as
apimachinery's `resource.Quantity` does. A malformed quantity is the apiserver's 400 decode error.
"""

from __future__ import annotations

import re
from fractions import Fraction

from tests.k8s_emulator.errors import ApiError

# apimachinery's own pattern, quoted in its error message.
QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY = re.compile(QUANTITY_PATTERN)

_SUFFIXES = {"": Fraction(1), "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 10**3)}
_SUFFIXES |= {prefix: Fraction(1000**power) for power, prefix in enumerate("kMGTPE", start=1)}
_SUFFIXES |= {f"{prefix}i": Fraction(1024**power) for power, prefix in enumerate("KMGTPE", start=1)}


def parse_quantity(text: str | int | float) -> Fraction:
    """The exact value of a quantity; raises the apiserver's 400 when it is not one."""
    if isinstance(text, int | float):
        return Fraction(text)
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ApiError.bad_request(f"quantities must match the regular expression '{QUANTITY_PATTERN}'")
    number, suffix = match.groups()
    try:
        value = Fraction(number)
    except ValueError:
        raise ApiError.bad_request(
            f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
        ) from None
    if suffix in _SUFFIXES:
        return value * _SUFFIXES[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return value * Fraction(10) ** int(suffix[1:])
        except ValueError:
            pass
    raise ApiError.bad_request(f"unable to parse quantity's suffix: {suffix!r}")
