"""Helpers for building many objects at once (a 10,000-job queue, 20,000 pods).

Both backends decode large listings into plain objects that form no reference cycles; Python's
cyclic collector still walks them on every generation-0 pass, which cost a third to two thirds of
the decoding time measured here (bench/queue_render.py, bench/k8s_capacity.py). Pausing it for the
duration of a bulk build is safe: reference counting frees all of it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that form no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
