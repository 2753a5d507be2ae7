"""Limits of HTTP mode's front (bot/slack/http_front.py); nested in the Slack settings as `http`.

The front faces the internet before anything is authenticated, so each limit bounds what a peer
without Slack's signing secret can make the bot hold. Slack's payloads are a few KiB (a modal's
state is the largest), so a 64 KiB body cap costs nothing. The connection cap stays below the usual
file-descriptor limit of 1,024, and at the cap a new connection closes the one idle longest
(bot/slack/http_connections.py), so idle peers cannot starve Slack. Set as e.g.
`CONCIERGE_SLACK__HTTP__MAX_CONNECTIONS=256`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class HttpEdgeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=64 * 1024, gt=0)  # larger bodies get 413 before they are read
    # A connection must send a whole request head within this long of opening, or of its last
    # answer: aiohttp's keep-alive timer covers both (it starts when the connection opens).
    idle_timeout_s: float = Field(default=15.0, gt=0)
    body_timeout_s: float = Field(default=10.0, gt=0)  # the whole body must arrive within this long, else 408
    max_connections: int = Field(default=512, gt=0)
    backlog: int = Field(default=1024, gt=0)  # connections the kernel queues before they are accepted
