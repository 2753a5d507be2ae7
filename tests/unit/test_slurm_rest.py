"""The slurmrestd driver against a fake slurmrestd speaking the v0.0.40+ shapes (the versions not
installed here; v0.0.38 is exercised on the real local slurmrestd in test_slurm_cluster.py):
version negotiation, the job submitted as the person, and errors mapped into our tree."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from backends.errors import BackendRejected, BackendUnavailable, ConciergeError, PermissionDenied
from backends.footprint import derive_footprint
from backends.slurm.backend import SlurmBackend
from backends.slurm.settings import SlurmSettings
from backends.types import Identity, JobRef, JobRequest
from tests.fakes.slurmrestd import ALICE, NEW, as_json, rest_backend, slurmrestd
from tests.fakes.unix_accounts import FakeAccounts
from tests.gpu_fakes.http_server import Reply, dead_url


@pytest.mark.parametrize(
    ("openapi", "serves", "chosen"),
    [
        (("v0.0.40", "v0.0.41", "v0.0.44"), "v0.0.41", "v0.0.41"),  # newest we speak; v0.0.44 is unknown
        (("v0.0.38",), "v0.0.38", "v0.0.38"),
        (None, "v0.0.40", "v0.0.40"),  # no OpenAPI document: probed newest first
        (None, "v0.0.99", None),
    ],
)
def test_the_api_version_is_negotiated(
    openapi: tuple[str, ...] | None, serves: str, chosen: str | None
) -> None:
    with rest_backend(slurmrestd(serves, openapi)) as (backend, _):
        if chosen is None:
            with pytest.raises(BackendUnavailable, match="offers none of the API versions"):
                backend.capacity()
        else:
            backend.capacity()
            assert backend.runner.version() == chosen  # type: ignore[attr-defined]


def test_the_backend_over_a_v0_0_41_server() -> None:
    with rest_backend(slurmrestd(openapi=(NEW,))) as (backend, received):
        request = JobRequest(
            gpus=2, gpu_type="a100", time_limit_minutes=90, memory_gb=8, command="python train.py"
        )
        footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
        plan = backend.plan(footprint, ALICE, "req-7")
        assert backend.submit(plan) == JobRef(backend="slurm", job_id="901")
        (submitted,) = [r for r in received if r.method == "POST"]
        assert submitted.headers["X-SLURM-USER-NAME"] == "alice"
        assert submitted.headers["X-SLURM-USER-TOKEN"] == "token-for-alice"
        job = json.loads(submitted.body)["job"]
        assert job["tres_per_node"] == "gres/gpu:a100:2"
        assert job["time_limit"] == {"set": True, "infinite": False, "number": 90}
        assert job["memory_per_node"]["number"] == 8192
        assert "SLURM_GET_USER_ENV=1" in job["environment"]
        assert (job["current_working_directory"], job["comment"]) == ("/home/alice", "gpu-concierge:req-7")

        before = len(received)
        statuses = backend.statuses([JobRef(backend="slurm", job_id=i) for i in ("72", "73", "999")])
        assert len(received) - before == 1  # one listing for any number of jobs
        assert [(s.ref.job_id, s.state.value) for s in statuses] == [("72", "running"), ("73", "pending")]
        (pool,) = backend.capacity()
        assert (pool.pool, pool.total, pool.allocated, pool.unavailable_nodes, pool.max_time_minutes) == (
            "gpu",
            4,
            1,
            ("n2",),
            1440,
        )
        backend.cancel(
            JobRef(backend="slurm", job_id="73"),
            Identity(requester="U-ADMIN", unix_user="root", is_admin=True),
        )
        assert (received[-1].method, received[-1].path) == ("DELETE", f"/slurm/{NEW}/job/73")


SLURM_SAID = {"errors": [{"description": "Invalid partition name specified", "error_number": 2000}]}
DENIED = {"errors": [{"description": "Access/permission denied", "error_number": 2002}]}


@pytest.mark.parametrize(
    ("reply", "operation", "error", "words"),
    [
        (as_json(401), "capacity", PermissionDenied, "refused the credentials for root"),
        (
            as_json(403, {"errors": [{"error": "token expired"}]}),
            "submit",
            PermissionDenied,
            "token expired",
        ),
        (Reply(503, b"<html>bad gateway</html>"), "capacity", BackendUnavailable, "HTTP 503"),
        (as_json(500, SLURM_SAID), "submit", BackendRejected, "Invalid partition name.*concierge free"),
        (as_json(500, DENIED), "cancel", PermissionDenied, "Access/permission denied"),
    ],
)
def test_errors_map_into_the_tree(
    reply: Reply, operation: str, error: type[ConciergeError], words: str
) -> None:
    with rest_backend(slurmrestd(openapi=(NEW,), fail=reply)) as (backend, _):
        footprint = derive_footprint(
            JobRequest(gpus=1, command="true"), "slurm", default_minutes=60, longest_minutes=None
        )
        acts: dict[str, Callable[[], object]] = {
            "capacity": backend.capacity,
            "submit": lambda: backend.submit(backend.plan(footprint, ALICE, "req-8")),
            "cancel": lambda: backend.runner.run(["scancel", "73"], as_user="alice"),
        }
        with pytest.raises(error, match=words):
            acts[operation]()


def test_an_unreachable_server_is_unavailable() -> None:
    settings = SlurmSettings(driver="rest", rest_url=dead_url(""), rest_token_command=("echo", "t"))
    with pytest.raises(BackendUnavailable, match="could not be reached"):
        SlurmBackend(settings, accounts=FakeAccounts("root")).capacity()
