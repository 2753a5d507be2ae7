"""`serve`'s metrics and probes, wired to the Slack door (bot/metrics.py counts; this connects).

- The ack: in Socket Mode, from an envelope's arrival to its acknowledgement being sent
  (`TimedSocketModeHandler`: the handler's own `handle` with a clock around it). HTTP mode's
  front (bot/slack/http_front.py) acknowledges slash commands, clicks and events itself before
  Bolt runs; its latency is what bench/slack_ack.py measures, and it is not counted here.
- /readyz: the database answers, and Slack is connected (Socket Mode: the WebSocket is open;
  HTTP mode: the front is listening).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.builtin.client import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.metrics import Metrics
from bot.settings import Settings
from bot.store import Store


class TimedSocketModeHandler(SocketModeHandler):
    def __init__(self, *args: object, metrics: Metrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._metrics = metrics

    def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        super().handle(client, req)
        self._metrics.ack_seconds.observe(time.perf_counter() - started)


class SlackLink:
    """Whether Slack is connected, as the answering loop knows it: set once it runs."""

    def __init__(self) -> None:
        self.connected: Callable[[], bool] = lambda: False


def readiness(store: Store, slack: SlackLink) -> Callable[[], str | None]:
    def ready() -> str | None:
        if (problem := store.unready()) is not None:
            return problem
        if not slack.connected():
            return "not connected to Slack"
        return None

    return ready


def serve_probes(settings: Settings, metrics: Metrics, ready: Callable[[], str | None]) -> WSGIServer | None:
    """/metrics, /healthz, /readyz on `settings.metrics`' port, unless turned off."""
    if not settings.metrics.enabled:
        return None
    from bot.metrics_http import serve_health_if_free

    return serve_health_if_free(metrics.registry, settings.metrics.host, settings.metrics.port, ready)
