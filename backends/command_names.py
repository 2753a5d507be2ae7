"""The name a job takes from its command when the person gave none: the script it runs.

Both backends name a job after it (`python /src/train.py --lr 3` → `train.py`), so a person finds
it in squeue or kubectl by the file they wrote; each then makes it a name its scheduler accepts
(backends/slurm/script.py keeps the suffix, backends/k8s/naming.py drops it for a DNS label).
"""

from __future__ import annotations

_SCRIPT_SUFFIXES = (".py", ".sh", ".jl", ".r", ".ipynb", ".lua", ".pl", ".rb", ".m")


def script_name(command: str | None) -> str | None:
    """The script a command runs (`python train.py --lr 3` → `train.py`), else its first word."""
    if not command:
        return None
    words = command.split()
    for word in words:
        base = word.rstrip("/").rsplit("/", 1)[-1]
        if _script_suffix(base):
            return base
    return words[0].rsplit("/", 1)[-1] if words else None


def without_script_suffix(name: str) -> str:
    """`train.py` → `train`; any other name as it is."""
    return name[: -len(suffix)] if (suffix := _script_suffix(name)) else name


def _script_suffix(base: str) -> str:
    lowered = base.lower()
    return next((s for s in _SCRIPT_SUFFIXES if lowered.endswith(s) and len(base) > len(s)), "")
