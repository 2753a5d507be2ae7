"""The login nodes' door into the one engine: an HTTP listener beside Slack's in `concierge serve`.

Why in `serve` and not a `concierge serve-cli` of its own: the point is one engine, one store and one
set of limits for Slack and every login node; in the same process a CLI request and a Slack request
for the same person are judged by the same engine against the same store, and a site deploys,
configures (settings, database credentials) and watches one service. It is opened when the
`login_service` settings are given, on its own port (Slack's HTTP mode faces the internet; this
one only the cluster's network).

Each request, in this order: its body is capped (`max_body_bytes`, else 413 before it is read); the
`Authorization: MUNGE <credential>` header is decoded by the service's munged (`unmunge`, as
Slurm's daemons do; a replayed, expired or foreign credential is refused there); the credential's
payload must be this request's (bot/remote/protocol.py: the service's own URL and path, and the
body's SHA-256), so a credential cannot be lifted onto another request or service; only then is
the body read as JSON and handed to `LoginDoor` with the uid munged vouched for. The engine is
synchronous: each request runs on a small pool, off the event loop. Expected failures go back as
the CLI's error (class, exit code, one line); anything else is logged under an incident id that
the person sees.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from backends.errors import ConciergeError, RequestInvalid
from bot.aio_server import AioServer, Stop
from bot.remote import protocol
from bot.remote.handlers import LoginDoor, error_envelope
from bot.remote.munge import CredentialRefused, vouched_by_munged
from bot.remote.settings import LoginServiceSettings
from bot.settings import Settings
from bot.tracker import Tracker

log = logging.getLogger("concierge.login")
SHUTDOWN_S = 5.0
MAX_HEADERS = 32
MAX_HEADER_BYTES = 8192  # a MUNGE credential is ~200 characters
INCIDENT_EXIT = 70  # the CLI's exit code for an unexpected failure (bot/cli/main.py)
_STATUS_BY_EXIT = {2: 400, 3: 403, 4: 404, 5: 422, 6: 503, 7: 500}
SIGNED = {"protocol": protocol.PROTOCOL}  # every answer names it: the CLI takes no other server's JSON


class LoginService(AioServer):
    """Serves `door` like socketserver's servers (bot/aio_server.py)."""

    def __init__(self, door: LoginDoor, settings: LoginServiceSettings) -> None:
        super().__init__(settings.host, settings.port)
        self._door = door
        self._settings = settings
        self.url = settings.public_url(self.server_port)
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="login-service")

    def start(self, name: str = "login-service") -> threading.Thread:
        """`serve_forever` on a daemon thread (beside Slack's door in `serve`)."""
        return super().start(name)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)

    async def _listen(self, sock: socket.socket) -> Stop:
        site = web.Application(client_max_size=self._settings.max_body_bytes)
        for path in protocol.PATHS:
            site.router.add_post(path, self._answer)
        runner = web.AppRunner(
            site,
            access_log=None,
            lingering_time=0,
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
            max_headers=MAX_HEADERS,
            shutdown_timeout=SHUTDOWN_S,
        )
        await runner.setup()
        await web.SockSite(runner, sock).start()
        log.info("login service listening on %s (credentials must name %s)", self.server_port, self.url)
        return runner.cleanup

    async def _answer(self, request: web.Request) -> web.Response:
        too_large = RequestInvalid(
            f"the request is larger than the service accepts ({self._settings.max_body_bytes} bytes): "
            "say it in fewer words"
        )
        declared = request.content_length
        if declared is not None and declared > self._settings.max_body_bytes:
            return _refused(413, too_large)
        try:
            body = await request.read()  # a chunked body is read only up to client_max_size
        except web.HTTPRequestEntityTooLarge:
            return _refused(413, too_large)
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        loop = asyncio.get_running_loop()
        status, answered = await loop.run_in_executor(
            self._pool, self._answered, request.path, scheme, credential.strip(), body
        )
        return web.json_response(answered | SIGNED, status=status)

    def _answered(self, path: str, scheme: str, credential: str, body: bytes) -> tuple[int, dict[str, Any]]:
        uid: int | None = None
        try:
            if scheme != protocol.SCHEME:
                raise CredentialRefused("the request carries no MUNGE credential (Authorization: MUNGE …)")
            s = self._settings
            vouched = vouched_by_munged(credential, s.unmunge, s.munge_socket, s.unmunge_timeout_s)
            uid = vouched.uid
            expected = protocol.bound_payload(protocol.joined(self.url, path), body)
            if not hmac.compare_digest(vouched.payload, expected):
                raise CredentialRefused(
                    "the service refused your MUNGE credential: it was made for another request (its "
                    f"payload does not name this request to {protocol.joined(self.url, path)}). Nothing was "
                    "done. If every request is refused so, the site file's service.url and the service's "
                    "CONCIERGE_LOGIN_SERVICE__URL differ: tell your admins."
                )
            answered = self._door.handle(path, uid, _json_object(body))
        except CredentialRefused as e:
            log.warning("refused a credential (uid %s) on %s: %s", uid, path, e.message)
            return 401, {"error": error_envelope(e)}
        except ConciergeError as e:
            return _STATUS_BY_EXIT.get(e.exit_code, 409), {"error": error_envelope(e)}
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("incident %s (uid %s, %s)", incident, uid, path)
            message = (
                f"something unexpected went wrong in the concierge service (incident {incident}); "
                "its admins find the details in the service's log. Please report the incident id."
            )
            return 500, {"error": {"kind": "ConciergeError", "exit_code": INCIDENT_EXIT, "message": message}}
        log.info("uid %s %s answered", uid, path)
        return 200, answered


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(body)
    except ValueError as e:
        raise RequestInvalid("the request's body is not JSON") from e
    if not isinstance(loaded, dict):
        raise RequestInvalid("the request's body must be a JSON object")
    return loaded


def _refused(status: int, error: ConciergeError) -> web.Response:
    return web.json_response({"error": error_envelope(error)} | SIGNED, status=status)


def serve_login_nodes(settings: Settings, login: LoginServiceSettings) -> None:
    """`concierge serve` for a site without Slack: the login nodes' door and the tracker that records
    each job's state changes (there is no thread to post them in); blocks until interrupted."""
    from bot.assembly import build_backends, build_concierge, build_routing, open_store
    from bot.metrics import Metrics
    from bot.metrics_http import serve_health_if_free

    store = open_store(settings)
    metrics = Metrics()  # counted where each thing happens, as in the Slack bot (bot/metrics.py)
    backends = build_backends(settings, metrics)
    concierge = build_concierge(settings, store, build_routing(settings), backends, metrics)
    metrics.follow_tracked_jobs(lambda: len(store.tracked_jobs()))
    probes = None
    if settings.metrics.enabled:  # /readyz: the database answers; there is no Slack to wait for
        where = settings.metrics
        probes = serve_health_if_free(metrics.registry, where.host, where.port, store.unready)
    stop = threading.Event()
    tracking = (Tracker(store, backends), settings.tracker_interval_s, stop)
    threading.Thread(target=_track, args=tracking, name="tracker", daemon=True).start()
    service = LoginService(LoginDoor(concierge, store, settings), login)
    try:
        service.serve_forever()
    finally:
        stop.set()
        service.server_close()
        if probes is not None:
            probes.shutdown()


def _track(tracker: Tracker, interval_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            tracker.poll_once()
        except Exception:
            log.exception("the tracker's poll failed; trying again in %.0f s", interval_s)
        stop.wait(interval_s)
