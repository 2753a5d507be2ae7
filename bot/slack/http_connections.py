"""A cap on HTTP mode's open connections that peers without the signing secret cannot use to shut
Slack out.

aiohttp 3.14 offers no connection limit of its own: `TCPSite(backlog=…)` only sizes the kernel's
queue of connections not yet accepted, and its server accepts whatever arrives. Before this cap,
~1,000 idle connections used up the process's file descriptors and Slack's requests failed
(issue 11). A plain cap would move that failure, not remove it: whoever holds the slots shuts out
everyone else. So at the cap a new connection takes the slot of another, as nginx reuses keep-alive
connections when it runs out, chosen in this order (oldest first within each):

1. quiet strangers: connections that have sent nothing since they opened or since their last
   answer, and never a request with a valid signature;
2. quiet connections that have carried a signed request (Slack's keep-alive connections);
3. connections still sending a request head or body (a slow peer, or a request about to start).

A connection being answered is never taken, and none before it has had `GRACE_S` to send its
request since it opened or since its last answer: without that grace a flood of new connections
took each other's slots, and Slack's with them, within one round of the event loop. When no
connection can give way, the new one is refused with 503. Each state is bounded in time (the idle,
body and answer timeouts), so nothing holds a slot for long.

`CappedConnections` wraps aiohttp's protocol factory: each connection is counted when it opens,
marked when bytes arrive, and released when it closes; the request handler marks it answering,
signed and answered. Everything here runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

GRACE_S = 1.0  # a new or just-answered connection keeps its slot this long, to send its request
_BUSY_EVERYWHERE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
)


class CappedConnections:
    """At most `limit` open connections; at the limit a new one takes the slot of one that can wait."""

    def __init__(
        self, limit: int, *, grace_s: float = GRACE_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limit = limit
        self._grace_s = grace_s
        self._clock = clock
        # Those that may give way, in the order they do; each maps to when it entered, oldest first.
        self._quiet_strangers: OrderedDict[asyncio.BaseTransport, float] = OrderedDict()
        self._quiet_known: OrderedDict[asyncio.BaseTransport, float] = OrderedDict()
        self._receiving: OrderedDict[asyncio.BaseTransport, float] = OrderedDict()
        self._answering: set[asyncio.BaseTransport] = set()
        self._known: set[asyncio.BaseTransport] = set()  # have carried a signed request
        self.replaced = 0  # connections closed to make room (for logs and the benchmark)
        self.refused = 0  # connections refused because none could give way

    @property
    def open(self) -> int:
        return (
            len(self._quiet_strangers) + len(self._quiet_known) + len(self._receiving) + len(self._answering)
        )

    def protocol_factory(self, make: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What `loop.create_server` gets: aiohttp's protocols, counted."""
        return lambda: _Counted(self, make())

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        now = self._clock()
        if self.open >= self._limit:
            giving_way = self._giving_way(now)
            if giving_way is None:
                self.refused += 1
                return False
            self._forget(giving_way)
            _abort(giving_way)  # frees its descriptor now; its connection_lost finds it forgotten
            self.replaced += 1
        self._quiet_strangers[transport] = now
        return True

    def receiving(self, transport: asyncio.BaseTransport) -> None:
        """Bytes arrived on it (called for every read, so cheap when nothing changes)."""
        since = self._quiet_strangers.pop(transport, None)
        if since is None:
            since = self._quiet_known.pop(transport, None)
        if since is not None:
            self._receiving[transport] = since  # its grace runs on from when it went quiet

    def answering(self, transport: asyncio.BaseTransport) -> None:
        for group in (self._receiving, self._quiet_strangers, self._quiet_known):
            if group.pop(transport, None) is not None:
                self._answering.add(transport)
                return

    def signed(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._answering:
            self._known.add(transport)

    def answered(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._answering:
            self._answering.discard(transport)
            quiet = self._quiet_known if transport in self._known else self._quiet_strangers
            quiet[transport] = self._clock()

    def closed(self, transport: asyncio.BaseTransport) -> None:
        self._forget(transport)

    def _giving_way(self, now: float) -> asyncio.BaseTransport | None:
        for group in (self._quiet_strangers, self._quiet_known, self._receiving):
            for transport, since in group.items():  # the oldest of each group only
                if now - since >= self._grace_s:
                    return transport
                break
        return None

    def _forget(self, transport: asyncio.BaseTransport) -> None:
        self._quiet_strangers.pop(transport, None)
        self._quiet_known.pop(transport, None)
        self._receiving.pop(transport, None)
        self._answering.discard(transport)
        self._known.discard(transport)


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
            self._cap.receiving(self._transport)
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
