"""An aiohttp server run like socketserver's servers (serve_forever, shutdown, server_close), for a
door that answers HTTP beside the rest of a synchronous process: Slack's HTTP mode
(bot/slack/http_front.py) and the login nodes' service (bot/remote/service.py).

The socket is bound at construction, so `server_port` is known before serving (port 0 = any), and a
port that is taken fails there, in the caller's thread. `serve_forever` runs the event loop in the
calling thread until `shutdown()` is called from another one; a shutdown before the loop started
makes `serve_forever` return at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable

Stop = Callable[[], Awaitable[None]]  # what to do, on the loop, when the server stops


class AioServer:
    def __init__(self, host: str, port: int, backlog: int | None = None) -> None:
        self._socket = socket.create_server((host, port), backlog=backlog)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._stopped = threading.Event()

    @property
    def server_port(self) -> int:
        return int(self._socket.getsockname()[1])

    def serve_forever(self) -> None:
        """Blocks, answering requests until `shutdown()` is called from another thread."""
        try:
            asyncio.run(self._serve())
        finally:
            self._stopped.set()

    def start(self, name: str) -> threading.Thread:
        """`serve_forever` on a daemon thread."""
        thread = threading.Thread(target=self.serve_forever, name=name, daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        """Stops `serve_forever` and waits until it has returned (at once when it never ran)."""
        with self._lock:
            self._stopping = True
            loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
            self._stopped.wait()

    def server_close(self) -> None:
        self._socket.close()

    async def _listen(self, sock: socket.socket) -> Stop:
        """Start answering on `sock`; return what stops it."""
        raise NotImplementedError

    async def _serve(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            if self._stopping:
                return
            self._loop, self._stop = asyncio.get_running_loop(), stop
        stopping = await self._listen(self._socket)
        try:
            await stop.wait()
        finally:
            await stopping()
            with self._lock:
                self._loop = self._stop = None
