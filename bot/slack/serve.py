"""Runs the Slack door: Socket Mode (dials out, works behind a firewall) or HTTP mode.

HTTP mode serves Bolt's WSGI adapter from a threading WSGI server: Bolt's own development server
handles one request at a time, which would queue acks behind each other under load. `http_server`
returns the bound server so tests (and the benchmark) can run it on a free port and stop it.
"""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.settings import Settings
from bot.slack.app import build_app
from bot.slack.job_updates import JobUpdates, follow_jobs
from bot.slack.settings import SlackSettings
from bot.tracker import Tracker


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # wsgiref's default backlog of 5 reset connections when a channel's worth of people typed
    # /gpu at once (bench/slack_ack.py with 100 concurrent requests).
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """One line per Slack request on stderr is noise; Bolt logs what matters."""


def http_server(app: App, host: str, port: int, path: str = "/slack/events") -> WSGIServer:
    return make_server(
        host,
        port,
        SlackRequestHandler(app, path=path),
        server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )


def socket_mode_handler(app: App, slack: SlackSettings) -> SocketModeHandler:
    if slack.app_token is None:  # SlackSettings' validator already refuses this in socket mode
        raise ValueError("Socket Mode needs an app token")
    return SocketModeHandler(app, app_token=slack.app_token.get_secret_value())


def serve(settings: Settings, slack: SlackSettings) -> None:
    """Blocks, answering Slack until interrupted."""
    from bot.assembly import build_backends, build_concierge, open_store

    store = open_store(settings)
    app = build_app(build_concierge(settings, store), store, slack)
    # The tracker posts each job's state changes in its Slack thread (bot.slack.job_updates).
    tracker = Tracker(store, build_backends(settings))
    loop_args = (tracker, JobUpdates(store, app.client), settings.tracker_interval_s, threading.Event())
    threading.Thread(target=follow_jobs, args=loop_args, name="tracker", daemon=True).start()
    if slack.mode == "http":
        server = http_server(app, slack.host, slack.port, slack.path)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    else:
        handler = socket_mode_handler(app, slack)
        # What SocketModeHandler.start() does, through the typed client (start() is untyped).
        handler.client.connect()
        try:
            threading.Event().wait()
        finally:
            handler.client.close()
