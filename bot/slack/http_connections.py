"""A cap on HTTP mode's open connections that idle peers cannot use to shut Slack out.

aiohttp 3.14 offers no connection limit of its own: `TCPSite(backlog=…)` only sizes the kernel's
queue of connections not yet accepted, and its server accepts whatever arrives. Before this cap,
~1,000 idle connections used up the process's file descriptors and Slack's requests failed
(issue 11). A plain cap would move that failure, not remove it: whoever holds the slots shuts out
everyone else. So at the cap a new connection closes the one that has been idle longest (no
request being answered on it: between requests, or still sending its request head), as nginx
reuses keep-alive connections when it runs out; only when every connection is busy answering is the
new one refused with 503. A busy connection is bounded in time by the body and answer timeouts,
and an idle one by the idle timeout, so nothing holds a slot for long.

`CappedConnections` wraps aiohttp's protocol factory: each connection is counted when it opens and
released when it closes, and the request handler marks it busy while it answers. Everything here
runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable

_BUSY_EVERYWHERE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
)


class CappedConnections:
    """At most `limit` open connections; at the limit a new one replaces the one idle longest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._idle: OrderedDict[asyncio.BaseTransport, None] = OrderedDict()  # longest idle first
        self._busy: set[asyncio.BaseTransport] = set()
        self.replaced = 0  # idle connections closed to make room (for logs and the benchmark)
        self.refused = 0  # connections refused because every slot was busy

    @property
    def open(self) -> int:
        return len(self._idle) + len(self._busy)

    def protocol_factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What `loop.create_server` gets: aiohttp's protocols, counted."""
        return lambda: _Counted(self, make())

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        if self.open >= self._limit:
            if not self._idle:
                self.refused += 1
                return False
            longest_idle, _ = self._idle.popitem(last=False)
            _abort(longest_idle)  # frees its descriptor now; its connection_lost is ignored below
            self.replaced += 1
        self._idle[transport] = None
        return True

    def busy(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._idle:  # else it was replaced meanwhile, and is closing
            del self._idle[transport]
            self._busy.add(transport)

    def idle(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._busy:
            self._busy.discard(transport)
            self._idle[transport] = None  # idle from now: the newest

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._idle.pop(transport, None)
        self._busy.discard(transport)


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the cap; refused connections never reach it."""

    def __init__(self, cap: CappedConnections, inner: asyncio.Protocol) -> None:
        self._cap = cap
        self._inner = inner
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._cap.admit(transport):
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_BUSY_EVERYWHERE)
            transport.close()
            return
        self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._cap.closed(self._transport)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._inner.resume_writing()


def _abort(transport: asyncio.BaseTransport) -> None:
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()
