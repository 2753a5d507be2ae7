"""A fake slurmrestd speaking the v0.0.40+ shapes, over real HTTP (tests/gpu_fakes/http_server.py),
and the Slurm backend's REST driver pointed at it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from backends.types import Identity
from tests.fakes.unix_accounts import FakeAccounts
from tests.gpu_fakes.http_server import Received, Reply, serving

NOW = datetime(2026, 11, 23, 21, 31, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
ALICE = Identity(requester="U-ALICE", unix_user="alice")
NEW = "v0.0.41"
NODES = {
    "nodes": [
        {
            "name": "n1",
            "state": ["MIXED"],
            "gres": "gpu:a100:4",
            "gres_used": "gpu:a100:1(IDX:0)",
            "partitions": ["gpu"],
        },
        {
            "name": "n2",
            "state": ["IDLE", "DRAIN"],
            "gres": "gpu:a100:4",
            "gres_used": "gpu:a100:0",
            "partitions": ["gpu"],
        },
    ]
}
PARTITIONS = {
    "partitions": [{"name": "gpu", "maximums": {"time": {"set": True, "infinite": False, "number": 1440}}}]
}


def as_json(status: int, body: Mapping[str, Any] | None = None) -> Reply:
    return Reply(status, json.dumps(body or {}).encode(), "application/json")


def slurmrestd(
    version: str = NEW, openapi: tuple[str, ...] | None = None, fail: Reply | None = None
) -> Callable[[Received], Reply]:
    """A slurmrestd of `version`: its OpenAPI document lists `openapi` (None: it serves none)."""
    listing = (FIXTURES / "squeue-25.05.json").read_text().encode()

    def answer(request: Received) -> Reply:
        if request.path in ("/openapi/v3", "/openapi"):
            return (
                as_json(200, {"paths": {f"/slurm/{v}/jobs/": {} for v in openapi}}) if openapi else Reply(404)
            )
        prefix = f"/slurm/{version}/"
        if not request.path.startswith(prefix):
            return Reply(404, b"Unable find requested URL")
        if fail is not None:
            return fail
        resource = request.path.removeprefix(prefix)
        if resource == "jobs/":
            return Reply(200, listing, "application/json")
        found: dict[str, Mapping[str, Any]] = {
            "nodes/": NODES,
            "partitions/": PARTITIONS,
            "ping/": {"pings": []},
            "job/submit": {"job_id": 901},
        }
        return as_json(200, found.get(resource, {}))

    return answer


@contextmanager
def rest_backend(handler: Callable[[Received], Reply]) -> Iterator[tuple[SlurmBackend, list[Received]]]:
    with serving(handler) as (url, received):
        settings = SlurmSettings(driver="rest", rest_url=url, rest_token_command=("echo", "token-for-{user}"))
        yield SlurmBackend(settings, accounts=FakeAccounts("root"), clock=lambda: NOW), received
