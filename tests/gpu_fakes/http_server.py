"""A threaded HTTP server on 127.0.0.1 (port 0) answering requests from a handler function.

The code under test talks to it with its real client (urllib), as it would to dcgm-exporter or
Prometheus; nothing of ours is patched.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; version=0.0.4; charset=utf-8"
    delay_s: float = 0.0


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: bytes = b""


Handler = Callable[[Received], Reply]


@contextmanager
def serving(handler: Handler) -> Iterator[tuple[str, list[Received]]]:
    """(base URL "http://127.0.0.1:PORT", the requests received so far) while the server runs."""
    received: list[Received] = []
    stop = threading.Event()

    class RequestHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Received(
                parts.path, parse_qs(parts.query), dict(self.headers.items()), self.command, body
            )
            received.append(request)
            reply = handler(request)
            if reply.delay_s:
                stop.wait(reply.delay_s)
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_POST = do_DELETE = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def dead_url(path: str = "/metrics") -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free): connection refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
