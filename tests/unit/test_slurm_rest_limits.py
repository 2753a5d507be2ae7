"""Over slurmrestd: the GPU limits come from its slurmdbd plugin where it is loaded (the definitions;
the use is summed from the queue) and otherwise degrade to a sentence that says so; the priority
factors (no sprio) and the digest's accounting window (its sacct answers job ids only) always say so.
Nothing fails and nothing is invented."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import BackendUnavailable
from backends.footprint import derive_footprint
from backends.types import JobRef, JobRequest, PendingCode
from tests.fakes.slurmrestd import ALICE, FIXTURES, NEW, rest_backend, slurmrestd
from tests.gpu_fakes.http_server import Received, Reply


def test_a_preview_over_rest_without_the_slurmdbd_plugin_says_the_limits_were_not_read() -> None:
    with rest_backend(slurmrestd(openapi=(NEW,))) as (backend, received):
        request = JobRequest(gpus=3, gpu_type="a100", qos="gpu-limited", command="python3 train.py")
        footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
        read = backend.gpu_limits(footprint, ALICE)
        assert read.limits == ()
        assert read.note is not None
        assert read.note.startswith("Slurm's own GPU limits could not be read (slurmrestd at http://")
        assert "serves no slurmdbd QOS or associations (load its slurmdbd plugin" in read.note
        assert [r.path for r in received if "slurmdb" in r.path] == [f"/slurmdb/{NEW}/qos/"]


def with_slurmdbd(answer: Callable[[Received], Reply]) -> Callable[[Received], Reply]:
    """The fake server, plus the slurmdbd plugin's QOS and associations captured on the local 22.05."""

    def both(request: Received) -> Reply:
        for resource in ("qos", "associations"):
            if request.path == f"/slurmdb/{NEW}/{resource}/":
                body = (FIXTURES / f"rest-dbv0.0.38-{resource}.json").read_bytes()
                return Reply(200, body, "application/json")
        return answer(request)

    return both


def test_with_the_slurmdbd_plugin_rest_answers_the_same_limits() -> None:
    with rest_backend(with_slurmdbd(slurmrestd(openapi=(NEW,)))) as (backend, _):
        request = JobRequest(gpus=2, qos="gpu-per-user", command="python3 train.py")
        footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
        read = backend.gpu_limits(footprint, ALICE)
        assert read.note is None
        assert [(x.words, x.limit, x.in_use, x.never_fits) for x in read.limits] == [
            ("QOS gpu-per-user allows each user 1 GPU at once", 1, 0, True)
        ]


def test_a_priority_job_over_rest_says_the_factors_are_not_offered() -> None:
    with rest_backend(slurmrestd(openapi=(NEW,))) as (backend, _):
        (reason,) = backend.explain(JobRef(backend="slurm", job_id="74"))
        assert reason.code is PendingCode.PRIORITY
        assert (
            "The priority factors could not be read (slurmrestd offers no equivalent of `sprio"
            in reason.sentence
        )


def test_the_digest_s_accounting_window_is_not_read_over_rest() -> None:
    with rest_backend(slurmrestd(openapi=(NEW,))) as (backend, received):
        since = datetime(2026, 12, 6, tzinfo=UTC)
        with pytest.raises(BackendUnavailable, match="reads no accounting for a period"):
            backend.gpu_allocations(since, since + timedelta(hours=1))
        assert not any("slurmdb" in r.path for r in received)
