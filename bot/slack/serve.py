"""Runs the Slack door: Socket Mode (dials out, works behind a firewall) or HTTP mode.

HTTP mode is served by `bot.slack.http_front.HttpFront` on aiohttp: it caps bodies, connections and
how long a peer may take, checks Slack's signature before anything else, answers a request sent
again only once (the store's claim), and acknowledges slash commands, clicks and events itself,
dispatching them to Bolt afterwards (see that module). `http_server` returns the bound server so
tests (and the benchmark) can run it on a free port.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.errors import SlackApiError

from backends.errors import BackendUnavailable, ConfigurationError
from bot.logs import configure_logging
from bot.metrics import Metrics
from bot.settings import Settings
from bot.slack.app import build_app, web_client
from bot.slack.http_front import HttpFront
from bot.slack.http_settings import HttpEdgeSettings
from bot.slack.job_updates import JobUpdates, follow_jobs
from bot.slack.observability import SlackLink, TimedSocketModeHandler, readiness, serve_probes
from bot.slack.replays import Replays
from bot.slack.settings import SlackSettings
from bot.store import Store
from bot.tracker import Tracker

if TYPE_CHECKING:
    from bot.engine import Concierge
    from bot.remote.service import LoginService


def http_server(
    app: App,
    store: Store,
    host: str,
    port: int,
    path: str = "/slack/events",
    *,
    signing_secret: str,
    edge: HttpEdgeSettings | None = None,
) -> HttpFront:
    """The front for `app`; `store` holds the once-only claim of each signed request."""
    return HttpFront(app, Replays(store.claim), host, port, path, signing_secret=signing_secret, edge=edge)


def socket_mode_handler(app: App, slack: SlackSettings, metrics: Metrics | None = None) -> SocketModeHandler:
    if slack.app_token is None:  # SlackSettings' validator already refuses this in socket mode
        raise ValueError("Socket Mode needs an app token")
    if metrics is not None:  # each envelope's ack timed (bot/slack/observability.py)
        return TimedSocketModeHandler(app, app_token=slack.app_token.get_secret_value(), metrics=metrics)
    return SocketModeHandler(app, app_token=slack.app_token.get_secret_value())


def serve(settings: Settings, slack: SlackSettings) -> None:
    """Blocks, answering Slack until interrupted."""
    from bot.assembly import build_backends, build_concierge, build_conversations, build_routing, open_store
    from bot.slack.scheduled import scheduled_work
    from bot.telemetry.reporting import cluster_queue_reader
    from bot.telemetry.schedule import Schedule

    configure_logging(settings.log_format)
    with _slack_failures_named("CONCIERGE_SLACK__BOT_TOKEN", slack.api_url):
        web_client(slack).auth_test()
    store = open_store(settings)
    metrics = Metrics()  # counted where each thing happens: bot/metrics.py says where
    routing = build_routing(settings)
    # One set of backends (clients, caches) for the engine, the tracker and the digests.
    backends = build_backends(settings, metrics)
    concierge = build_concierge(settings, store, routing, backends, metrics)
    conversations = build_conversations(settings, concierge, store, routing)
    app = build_app(concierge, store, slack, nudges=settings.nudges, conversations=conversations)
    # The tracker posts each job's state changes in its Slack thread (bot.slack.job_updates).
    tracker = Tracker(store, backends)
    loop_args = (tracker, JobUpdates(store, app.client), settings.tracker_interval_s, threading.Event())
    threading.Thread(target=follow_jobs, args=loop_args, name="tracker", daemon=True).start()
    # Digests, GPU sampling and nudges: run by whichever replica holds the schedule's lease.
    work = scheduled_work(settings, store, app.client, cluster_queue_reader(backends))
    work = replace(work, post_digest=metrics.counted_digest(work.post_digest))
    schedule = Schedule(settings.database_url, settings.schedule, work)
    metrics.follow_leadership(lambda: schedule.is_leader)
    metrics.follow_tracked_jobs(lambda: len(store.tracked_jobs()))
    if routing is not None:
        metrics.follow_routing(routing)
    slack_link = SlackLink()
    probes = serve_probes(settings, metrics, readiness(store, slack_link))
    _stop_on_sigterm()
    schedule.start()
    login = _login_service(settings, concierge, store)
    try:
        _answer_slack(app, store, slack, metrics, slack_link)
    finally:
        if probes is not None:
            probes.shutdown()
        if login is not None:
            login.shutdown()
            login.server_close()
        schedule.shutdown()


def _stop_on_sigterm() -> None:
    """Kubernetes and compose stop a container with SIGTERM: end as on Ctrl-C, through the `finally`
    that releases the schedule's lease, so a rolling restart hands the schedule over at once instead
    of after the lease runs out."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    if threading.current_thread() is threading.main_thread():  # only there can a handler be set
        signal.signal(signal.SIGTERM, stop)


def _login_service(settings: Settings, concierge: Concierge, store: Store) -> LoginService | None:
    """The login nodes' door (bot/remote/service.py) on its own port, over the same engine and store,
    when `login_service` is configured."""
    if settings.login_service is None:
        return None
    from bot.remote.handlers import LoginDoor
    from bot.remote.service import LoginService

    service = LoginService(LoginDoor(concierge, store, settings), settings.login_service)
    service.start()
    return service


def _answer_slack(
    app: App,
    store: Store,
    slack: SlackSettings,
    metrics: Metrics | None = None,
    link: SlackLink | None = None,
) -> None:
    link = link or SlackLink()
    if slack.mode == "http":
        if slack.signing_secret is None:  # SlackSettings' validator already refuses this in HTTP mode
            raise ValueError("HTTP mode needs the signing secret")
        secret = slack.signing_secret.get_secret_value()
        server = http_server(
            app, store, slack.host, slack.port, slack.path, signing_secret=secret, edge=slack.http
        )
        link.connected = lambda: True  # listening from here on
        try:
            server.serve_forever()
        finally:
            server.server_close()
    else:
        handler = socket_mode_handler(app, slack, metrics)
        # What SocketModeHandler.start() does, through the typed client (start() is untyped).
        with _slack_failures_named("CONCIERGE_SLACK__APP_TOKEN", slack.api_url):
            handler.client.connect()
        link.connected = handler.client.is_connected
        try:
            threading.Event().wait()
        finally:
            handler.client.close()


@contextmanager
def _slack_failures_named(token_setting: str, api_url: str) -> Iterator[None]:
    """Slack unreachable (exit 6) or refusing the token (exit 7), said with the setting to look at,
    before `serve` starts anything else."""
    try:
        yield
    except SlackApiError as e:
        error = e.response.get("error", "an error")
        raise ConfigurationError(
            f"Slack refused the token in {token_setting} ({error}): copy it again from the app's settings "
            "(bot token xoxb-… under OAuth & Permissions, app token xapp-… under Basic Information)"
        ) from e
    except OSError as e:  # urllib's URLError, refused connections, DNS and TLS failures
        raise BackendUnavailable(
            f"Slack could not be reached at {api_url} ({e}): check this host's network and proxy "
            "(HTTPS_PROXY), or CONCIERGE_SLACK__API_URL if it is set"
        ) from e
