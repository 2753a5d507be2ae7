"""The engine reads the cluster's own GPU limits (a `LimitAware` backend) for the preview and again at
submit, so a request the cluster would hold forever is refused before anything is submitted."""

from __future__ import annotations

import pytest

from backends.cluster_limits import ClusterGpuLimit, ClusterLimits
from backends.errors import BackendUnavailable, PolicyDenied
from backends.types import Footprint, Identity
from bot.engine import Concierge
from bot.store import Store
from bot.understanding.grammar import understand
from policies import Verdict, load_policy
from tests.fakes.backend import FakeBackend

ALICE = Identity(requester="U-alice", unix_user="alice")


class LimitedBackend(FakeBackend):
    """The fake cluster with one per-user GPU limit of its own (as Slurm's QOS MaxTRESPerUser)."""

    def __init__(self, per_user: int, in_use: int, fails: Exception | None = None) -> None:
        super().__init__()
        self.per_user, self.in_use, self.fails = per_user, in_use, fails
        self.limit_reads: list[int] = []

    def gpu_limits(self, footprint: Footprint, identity: Identity) -> ClusterLimits:
        self.limit_reads.append(footprint.total_gpus)
        if self.fails is not None:
            raise self.fails
        words = f"QOS solo allows each user {self.per_user} GPUs at once"
        return ClusterLimits(
            limits=(
                ClusterGpuLimit(
                    words=words, limit=self.per_user, in_use=self.in_use, asked=footprint.total_gpus
                ),
            )
        )


def engine(store: Store, backend: FakeBackend) -> Concierge:
    return Concierge(store, {"slurm": backend}, understand, load_policy(None))


def test_a_request_over_the_cluster_limit_is_refused_in_the_preview_and_never_submitted(store: Store) -> None:
    backend = LimitedBackend(per_user=2, in_use=0)
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "3 a100 for 1 hour to run python3 train.py", "cli")
    assert prepared.decision.verdict == Verdict.DENY
    assert prepared.decision.reasons == (
        "the cluster would never start it: QOS solo allows each user 2 GPUs at once and this asks for 3; "
        "ask for 2 or fewer",
    )
    with pytest.raises(PolicyDenied, match="the cluster would never start it"):
        concierge.submit(prepared)
    assert backend.submitted == []
    assert backend.limit_reads == [3, 3]  # read for the preview, and again when Submit was pressed


def test_a_request_that_will_wait_on_the_limit_is_allowed_and_says_so(store: Store) -> None:
    backend = LimitedBackend(per_user=2, in_use=2)
    concierge = engine(store, backend)
    prepared = concierge.prepare(ALICE, "1 a100 for 1 hour to run python3 train.py", "cli")
    assert prepared.decision.verdict == Verdict.ALLOW
    (reason,) = prepared.decision.reasons
    assert reason.startswith("the cluster will hold it until GPUs are released: QOS solo allows each user")
    concierge.submit(prepared)
    assert len(backend.submitted) == 1


def test_limits_that_cannot_be_read_leave_a_note_and_the_site_policy_judges_alone(store: Store) -> None:
    backend = LimitedBackend(per_user=2, in_use=0, fails=BackendUnavailable("scontrol timed out"))
    prepared = engine(store, backend).prepare(ALICE, "3 a100 for 1 hour to run python3 train.py", "cli")
    assert prepared.decision.verdict == Verdict.ALLOW
    assert "the cluster's own GPU limits could not be read (scontrol timed out)" in prepared.warnings
