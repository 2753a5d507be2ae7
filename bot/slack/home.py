"""The App Home tab: the person's active jobs, their last requests, and free GPUs by type.

Published with `views.publish` each time the person opens the tab (`app_home_opened`), so it is as
fresh as the cluster's answer then; nothing is cached. Each part is read on its own: when the
cluster cannot be reached, the view says so in that part and still shows what the store knows.
Opening the tab is not a request, so it is not recorded in the person's history (once-only claims
of events and clicks live in their own table, so they are never among "last requests").
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock
from slack_sdk.models.views import View

from backends.errors import ConciergeError, PermissionDenied
from backends.types import GpuPool, Identity
from bot import text_render as render
from bot.engine import Concierge
from bot.slack import blocks
from bot.slack.commands import ResolveIdentity

log = logging.getLogger("concierge.slack")

HOME_BLOCK_LIMIT = 100
LAST_REQUESTS = 5
# Rows that record a delivery or a click, not something the person asked (see submission.py).


class HomeTab:
    def __init__(self, concierge: Concierge, resolve_identity: ResolveIdentity) -> None:
        self._concierge = concierge
        self._resolve_identity = resolve_identity

    def opened(self, event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab", "home") != "home":
            return  # the Messages tab opened: that is a DM, not the Home view
        user_id = str(event["user"])
        try:
            client.views_publish(user_id=user_id, view=self.view(user_id))
        except Exception:
            log.exception("could not publish the Home tab of %s", user_id)

    def view(self, user_id: str) -> View:
        shown: list[Block] = [HeaderBlock(text="GPU Concierge")]
        try:
            identity: Identity | None = self._resolve_identity(user_id)
        except PermissionDenied as e:
            identity = None
            shown.append(blocks.section(f":warning: {blocks.escaped(e.message)}"))
        if identity is not None:
            shown.append(_part("Your active jobs", lambda: self._active_jobs(identity)))
        shown.append(_part("Your last requests", lambda: self._last_requests(user_id)))
        shown.append(_part("Free GPUs by type", self._free_gpus))
        shown.append(DividerBlock())
        updated = datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M")
        shown.append(blocks.context(f"Updated {updated} · ask in a DM or with `/gpu help`"))
        home = View(type="home", blocks=shown[:HOME_BLOCK_LIMIT])
        home.validate_json()
        return home

    def _active_jobs(self, identity: Identity) -> str:
        jobs = [j for j in self._concierge.queue(identity, mine=True) if not j.state.is_final]
        return render.queue(jobs) if jobs else "No active jobs."

    def _last_requests(self, user_id: str) -> str:
        # Job requests, as `concierge history` lists them: the questions asked between them are not.
        records = self._concierge.history(
            Identity(requester=user_id), limit=LAST_REQUESTS * 4, questions=False
        )
        asked = records[:LAST_REQUESTS]
        return render.history(asked)

    def _free_gpus(self) -> str:
        return free_by_type(self._concierge.capacity())


def free_by_type(pools: list[GpuPool]) -> str:
    if not pools:
        return "No GPUs found."
    free: dict[str, tuple[int, int]] = {}
    for pool in pools:
        kind = pool.gpu_type or "gpu"
        was_free, was_total = free.get(kind, (0, 0))
        free[kind] = (was_free + pool.free, was_total + pool.total)
    rows = [(kind, str(f), str(t)) for kind, (f, t) in sorted(free.items())]
    return render.table(("TYPE", "FREE", "TOTAL"), rows)


def _part(title: str, read: Callable[[], str]) -> Block:
    """One titled part of the view; a failure to read it is said in its place."""
    try:
        return blocks.code(read(), title)
    except ConciergeError as e:
        said = f"could not be read: {e.message}"
    except Exception:
        incident = uuid.uuid4().hex[:12]
        log.exception("incident %s", incident)
        said = f"could not be read (incident `{incident}`)"
    return blocks.section(f"*{blocks.escaped(title)}*\n:warning: {blocks.escaped(said)}")
