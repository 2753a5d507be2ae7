"""GPU model names as people write them, reduced to the family name the clusters use.

"NVIDIA H100 SXM5 80GB", "h100s", "H100-80GB-HBM3" are all `h100` (with 80 GB where stated):
Slurm GRES types and node labels name the family, and the memory is a separate constraint
(`gpu_memory_gb`). Form factors (SXM, PCIe, NVL) are dropped: no site in our configuration asks
for them, and keeping them would split one pool into names nobody schedules by.

Decisions worth knowing:
- A10G (the AWS build of the A10: same GA102 chip, 24 GB) is `a10`: one family, as parse.md lists.
- "RTX 6000 Ada" is `rtx6000ada`, "RTX A6000" is `a6000`, plain "Quadro RTX 6000" is `rtx6000`:
  three different cards that people name alike.
- Consumer cards need their "RTX"/"GeForce" prefix ("RTX 4090"): a bare "4090" is a number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.understanding.lazy_re import lazy

# (family, alias regex); order matters where one alias is the start of another (l40s before l40).
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("gh200", r"gh200"),
    ("gb200", r"gb200"),
    ("b200", r"b200"),
    ("b100", r"b100"),
    ("h200", r"h200"),
    ("h100", r"h100"),
    ("h800", r"h800"),
    ("a800", r"a800"),
    ("a100", r"a100"),
    ("v100", r"v100"),
    ("p100", r"p100"),
    ("p40", r"p40"),
    ("k80", r"k80"),
    ("l40s", r"l40[\s-]?s"),
    ("l40", r"l40"),
    ("l4", r"l4"),
    ("t4", r"t4"),
    ("a10", r"a10g?"),
    ("a16", r"a16"),
    ("a30", r"a30"),
    ("a40", r"a40"),
    ("a2", r"a2"),
    ("rtx6000ada", r"(?:rtx[\s-]*)?6000[\s-]*ada(?:[\s-]+generation)?"),
    ("a6000", r"(?:rtx[\s-]*)?a6000"),
    ("a5000", r"(?:rtx[\s-]*)?a5000"),
    ("a4000", r"(?:rtx[\s-]*)?a4000"),
    ("rtx6000", r"rtx[\s-]*6000"),
    ("rtx8000", r"rtx[\s-]*8000"),
    ("rtx5090", r"rtx[\s-]*5090"),
    ("rtx4090", r"rtx[\s-]*4090"),
    ("rtx3090", r"rtx[\s-]*3090"),
    ("mi325x", r"mi325x"),
    ("mi300x", r"mi300x"),
    ("mi300a", r"mi300a"),
    ("mi250x", r"mi250x"),
    ("mi250", r"mi250"),
    ("mi210", r"mi210"),
    ("mi100", r"mi100"),
)
KNOWN_GPU_TYPES: frozenset[str] = frozenset(family for family, _ in _FAMILIES)

_VENDOR = r"(?:(?:nvidia|amd|tesla|geforce|quadro|radeon|instinct)[\s-]+){0,2}"
_FORM_FACTOR = r"(?:sxm\d?|pci-?e|nvl|hbm\d?e?)"
MEMORY_SUFFIX = r"\(?\d{1,4}\s*(?:gb|gib|g)\)?"
_HOST_MEMORY_WORD = r"(?:ram|memory|mem|host|system|cpu|main)\b"
_FAMILY_ALTERNATION = "|".join(alias for _, alias in _FAMILIES)

# One GPU model as written, without word boundaries (the caller adds them, so "8xH100" can be read).
# A memory size right after the model is the GPU's own ("A100 80GB") unless a word says it is host
# memory ("a100 64GB ram").
GPU_MODEL = (
    # The lookahead fails fast at the many positions where no model can start (a large speed-up).
    r"(?=[abghiklmnpqrtv6])"
    rf"{_VENDOR}(?:{_FAMILY_ALTERNATION})(?:'?s(?![a-z0-9]))?"
    rf"(?:[\s-]*{_FORM_FACTOR}(?![a-z0-9]))*"
    rf"(?:[\s-]*{MEMORY_SUFFIX}(?![a-z0-9])(?!\s*(?:of\s+)?{_HOST_MEMORY_WORD}))?"
    rf"(?:[\s-]*{_FORM_FACTOR}(?![a-z0-9]))*"
    r"(?:'?s(?![a-z0-9]))?"
)

# Cheap test for "a model may be named here": every alias contains one of these.
MODEL_HINT_RE = lazy(r"[abhlptvk]\d|g[hb]2|rtx|mi\d|6000", re.IGNORECASE)

_FAMILY_RES = tuple((family, lazy(rf"{_VENDOR}(?:{alias})", re.IGNORECASE)) for family, alias in _FAMILIES)
_MEMORY_IN_MODEL_RE = lazy(r"(\d{1,4})\s*(?:gb|gib|g)\b", re.IGNORECASE)
_STANDALONE_RE = lazy(rf"^\s*{GPU_MODEL}\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class GpuModel:
    """A GPU model read from text: its family and, when written with it, its memory in GB."""

    gpu_type: str
    memory_gb: int | None = None


def read_gpu_model(text: str) -> GpuModel | None:
    """The family (and memory) of one model as written ("NVIDIA A100-80GB" → a100, 80), else None."""
    if not _STANDALONE_RE.match(text):
        return None
    stripped = text.strip()
    for family, family_re in _FAMILY_RES:
        found = family_re.match(stripped)
        if found is None:
            continue
        memory = _MEMORY_IN_MODEL_RE.search(stripped, found.end())
        return GpuModel(family, int(memory.group(1)) if memory else None)
    return None


def canonical_gpu_type(alias: str) -> str | None:
    """The family name for an alias ("H100s" → "h100", "RTX 6000 Ada" → "rtx6000ada"), else None."""
    model = read_gpu_model(alias)
    return model.gpu_type if model else None


# A GPU model as a token of running text, not part of a path, URL or image name ("l40." ends a
# sentence, "l40.py" is a file): how the model's answers are checked against the person's words.
_GPU_MODEL_TOKEN_RE = lazy(rf"(?<![\w./:@-])(?:{GPU_MODEL})(?![\w-]|\.\w)", re.IGNORECASE)


def find_gpu_models(text: str) -> list[GpuModel]:
    """Every GPU model named in `text`, in order."""
    found = (read_gpu_model(m.group(0)) for m in _GPU_MODEL_TOKEN_RE.finditer(text))
    return [model for model in found if model is not None]
