"""Over slurmrestd (slurm/v0.0.3x–4x has no association-manager view and no sprio) the limits and the
priority factors degrade to a sentence that says so, and the digest's accounting window is not read
(its sacct answers job ids only); nothing fails and nothing is invented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backends.errors import BackendUnavailable
from backends.footprint import derive_footprint
from backends.types import JobRef, JobRequest, PendingCode
from tests.unit.test_slurm_rest import ALICE, NEW, rest_backend, slurmrestd


def test_a_preview_over_rest_says_the_slurm_limits_were_not_read() -> None:
    with rest_backend(slurmrestd(openapi=(NEW,))) as (backend, received):
        request = JobRequest(gpus=3, gpu_type="a100", qos="gpu-limited", command="python3 train.py")
        footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
        read = backend.gpu_limits(footprint, ALICE)
        assert read.limits == ()
        assert read.note is not None
        assert read.note.startswith(
            "Slurm's own GPU limits could not be read (slurmrestd offers no equivalent"
        )
        assert "scontrol -o show assoc_mgr flags=users,assoc,qos users=alice qos=gpu-limited" in read.note
        assert not any("assoc" in r.path for r in received)  # no request was made for it


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
