"""How every Slack listener is registered: acknowledge at once, do the work on a pool of our own.

Bolt runs both the ack listeners and the lazy listeners on one executor (slack_bolt 1.30,
`listener_executor`). With slow work (a cluster call of seconds) on every worker, the next request's
ack queued behind it and missed Slack's 3 s: bench/slack_ack.py measured 71 of 100 acks over 3 s
with 8 workers. So each lazy listener here only hands its work to a separate pool and returns,
and Bolt's executor stays free for acks.

The pool's size (`CONCIERGE_SLACK__WORKERS`, default 32) is how many requests are worked on at once,
and so bounds the bot's concurrent calls to the cluster. Each worker mostly waits on the cluster,
so threads are cheap; with 8, a burst of 100 `/gpu` with a 2 s cluster was answered after 36 s
(issue 11), with 32 in about four rounds of the cluster's time (bench/slack_ack.py).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import Ack

log = logging.getLogger("concierge.slack")
Work = Callable[..., None]


def acknowledge(ack: Ack) -> None:
    ack()


class Background:
    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="slack-work")

    def __call__(self, work: Work) -> Work:
        # functools.wraps keeps `work`'s signature visible (Bolt injects arguments by name, through
        # inspect.unwrap), so the hand-off receives exactly what `work` asks for.
        @functools.wraps(work)
        def hand_off(**kwargs: Any) -> None:
            self._pool.submit(work, **kwargs).add_done_callback(_log_failure)

        return hand_off

    def register(self, route: Callable[..., Any], *work: Work) -> None:
        """`background.register(app.command("/gpu"), answer)`: ack now, `answer` on our pool."""
        route(ack=acknowledge, lazy=[self(w) for w in work])


def _log_failure(done: Future[None]) -> None:
    # Listeners answer expected errors themselves (bot/slack/incidents.py); this is the last net.
    error = done.exception()
    if error is not None:
        log.error("Slack listener work failed", exc_info=error)
