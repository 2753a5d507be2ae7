"""Calls made at the same moment, as replicas or people racing each other make them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


def at_once(
    target: Callable[..., object], arguments: Iterable[tuple[object, ...]], timeout_s: float = 120
) -> None:
    """`target` with each tuple of arguments in a thread of its own, all started before any is joined."""
    threads = [threading.Thread(target=target, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)
