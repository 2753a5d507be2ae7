"""/metrics, /healthz and /readyz on one small HTTP server beside `serve` or `agent`.

/healthz answers 200 while the process can answer at all (a liveness probe: restart when it
does not). /readyz answers 200 only when `ready()` finds nothing wrong (the database reachable
and, for serve, Slack connected), else 503 with the reason, so a readiness probe keeps traffic
away and a person reading it sees why. Served by wsgiref's threading server on a daemon thread,
as prometheus_client serves its own; the caller shuts it down to stop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

log = logging.getLogger("concierge.metrics")
Ready = Callable[[], str | None]  # None when ready, else why not
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def health_app(
    registry: CollectorRegistry, ready: Ready
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return _answer(start_response, "200 OK", generate_latest(registry), CONTENT_TYPE_LATEST)
        if path == "/healthz":
            return _answer(start_response, "200 OK", b"ok\n")
        if path == "/readyz":
            try:
                problem = ready()
            except Exception as e:  # a probe that fails is a reason, not a crash
                problem = f"the readiness check failed: {type(e).__name__}: {e}"
            if problem is None:
                return _answer(start_response, "200 OK", b"ready\n")
            return _answer(start_response, "503 Service Unavailable", f"not ready: {problem}\n".encode())
        return _answer(start_response, "404 Not Found", b"not found: try /metrics, /healthz or /readyz\n")

    return app


def serve_health(registry: CollectorRegistry, host: str, port: int, ready: Ready) -> WSGIServer:
    """The server, already answering on a daemon thread; `server.server_port` is the bound port."""
    server = make_server(
        host, port, health_app(registry, ready), ThreadingWSGIServer, handler_class=_SilentHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


def serve_health_if_free(
    registry: CollectorRegistry, host: str, port: int, ready: Ready
) -> WSGIServer | None:
    """`serve_health`, or None with an error logged when the port is taken: a second bot or agent on
    one host (tests, host networking) keeps running without probes rather than failing to start;
    in a pod the port is its own, and a probe that finds nothing there says so."""
    try:
        return serve_health(registry, host, port, ready)
    except OSError as e:
        log.error(
            "/metrics, /healthz and /readyz are off: %s:%d cannot be bound (%s); set CONCIERGE_METRICS__PORT "
            "to a free port (0: any) or CONCIERGE_METRICS__ENABLED=false",
            host, port, e.strerror or e,
        )  # fmt: skip
        return None


def _answer(
    start_response: StartResponse, status: str, body: bytes, content_type: str = "text/plain"
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
