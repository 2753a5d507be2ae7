"""A signed Slack request is acted on once, however often it is sent again inside its window.

Slack's signature covers `v0:{timestamp}:{body}` and is accepted while the timestamp is within 300 s
of now, so whoever holds a copy of a request (a proxy's log, a peer in the path) can send it again
for five minutes; before issue 11 every copy made a new preview. The timestamp and signature name one
request exactly, and nobody without the signing secret can make another, so they are its key:

- `seen_here(key)`, on the event loop: a memory of this replica's recent keys. A copy that comes back
  to the same replica is answered an empty 200 there and then: no thread, no database, so a flood of
  copies costs no more than the signature check. Bounded in time (twice the window) and in size
  (`remembered`); only requests Slack signed get in, so this is Slack's own traffic of minutes.
- `first_anywhere(key, actor)`, on a worker thread just before Bolt sees the request: the store's
  once-only claim (`Store.claim`, one INSERT … ON CONFLICT DO NOTHING), which holds across replicas
  behind a load balancer where the memory above cannot see. It runs after the ack, so the database
  is never on the ack's path.

The memory alone would let a copy sent to another replica through; the claim alone would put a
database write on every copy. A retried event (X-Slack-Retry-Num) is a separate delivery to Slack
and is told apart by its event id instead (bot/slack/conversation.py).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

WINDOW_S = 300.0  # slack_sdk's SignatureVerifier accepts timestamps this far from now
REMEMBERED = 10_000


def request_key(timestamp: str, signature: str) -> str:
    return f"slack-request:{timestamp}:{signature}"


class Replays:
    def __init__(
        self,
        claim: Callable[[str, str], bool],
        *,
        remembered: int = REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._claim = claim
        self._remembered = remembered
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key → when it may be forgotten

    def seen_here(self, key: str) -> bool:
        """True when this replica has had `key` before; remembers it otherwise. Event loop only."""
        now = self._clock()
        while self._seen and (next(iter(self._seen.values())) <= now or len(self._seen) >= self._remembered):
            self._seen.popitem(last=False)
        if key in self._seen:
            return True
        # A timestamp may lie up to the window ahead of this clock as well as behind it.
        self._seen[key] = now + 2 * WINDOW_S
        return False

    def first_anywhere(self, key: str, actor: str) -> bool:
        """True for the one replica, and the one time, that may act on `key`. A database write."""
        return self._claim(key, actor)
