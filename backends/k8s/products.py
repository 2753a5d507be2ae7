"""GPU product names as GPU Feature Discovery labels them, and the short types people ask for.

`nvidia.com/gpu.product` holds the driver's name with spaces turned into '-':
`A100-SXM4-40GB`, `NVIDIA-A100-PCIE-40GB`, `NVIDIA-H100-80GB-HBM3`, `Tesla-T4`,
`NVIDIA-RTX-6000-Ada-Generation`; `-SHARED` is appended on time-sliced nodes (renameByDefault
false) and `-MIG-<profile>` under the single MIG strategy. A person says `a100`.

A type matches a product when it equals one of the product's '-'-separated words, or several
consecutive words run together (`rtx6000ada`), compared without case. Whole words only, so `a10`
never matches an A100 and `l4` never matches an L40S. The products themselves are always read
from the cluster's nodes; nothing here lists which products exist.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-_\s]+")
_VENDOR_WORDS = frozenset({"nvidia", "tesla", "geforce", "quadro"})
_MODEL_WORD = re.compile(r"^[a-z]{1,3}\d{1,4}[a-z]*$")
_NOT_MODEL = re.compile(r"^(sxm\d*|pcie|hbm\d*e?|nvl|mig|shared|\d+gb)$")
_MIG_SUFFIX = re.compile(r"-MIG-(?P<profile>\d+g\.\d+gb)$", re.IGNORECASE)
SHARED_SUFFIX = "-SHARED"


def _words(product: str) -> list[str]:
    return [word for word in _SEPARATORS.split(product.lower()) if word]


def product_matches(gpu_type: str, product: str) -> bool:
    wanted = gpu_type.lower()
    words = _words(product)
    for start in range(len(words)):
        joined = ""
        for word in words[start:]:
            joined += word
            if joined == wanted:
                return True
            if len(joined) >= len(wanted):
                break
    return False


def family_of(product: str | None) -> str | None:
    """The short type of a product (`NVIDIA-A100-SXM4-80GB` → `a100`), for sentences and filters."""
    if not product:
        return None
    words = [word for word in _words(base_product(product)) if word not in _VENDOR_WORDS]
    for word in words:
        if _MODEL_WORD.match(word) and not _NOT_MODEL.match(word):
            return word
    return "".join(words[:3]) or None


def mig_profile_of(product: str) -> str | None:
    """The MIG profile a single-strategy product name carries (`…-MIG-1g.5gb` → `1g.5gb`)."""
    match = _MIG_SUFFIX.search(product)
    return match["profile"].lower() if match else None


def base_product(product: str) -> str:
    """The product without the `-SHARED` and `-MIG-…` suffixes GFD adds."""
    without_mig = _MIG_SUFFIX.sub("", product)
    if without_mig.upper().endswith(SHARED_SUFFIX):
        return without_mig[: -len(SHARED_SUFFIX)]
    return without_mig
