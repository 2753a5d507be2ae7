"""`judge` with the cluster's own GPU limits (Slurm QOS/association) in `Usage.cluster_limits`."""

from __future__ import annotations

from typing import Any

from backends.cluster_limits import ClusterGpuLimit
from backends.types import Identity, JobRequest
from policies import Decision, PolicySettings, Usage, Verdict, footprint_for, judge, load_policy

PERSON = Identity(requester="U1", unix_user="alice")
ADMIN = Identity(requester="U0", unix_user="root", is_admin=True)
SITE = load_policy(None)
PER_USER = "QOS solo allows each user 2 GPUs at once"
GROUP = "QOS team allows 2 GPUs at once for all its jobs together"


def judged(gpus: int, identity: Identity, *limits: ClusterGpuLimit, site: PolicySettings = SITE) -> Decision:
    request = JobRequest(command="python3 train.py", gpus=gpus, time_limit_minutes=60)
    return judge(
        footprint_for(request, "slurm", site, identity), identity, Usage(cluster_limits=limits), site
    )


def limit(words: str, cap: int, in_use: int | None, asked: int, **more: Any) -> ClusterGpuLimit:
    return ClusterGpuLimit(words=words, limit=cap, in_use=in_use, asked=asked, **more)


def test_a_request_over_a_cluster_limit_by_itself_is_refused_before_submit() -> None:
    decision = judged(3, PERSON, limit(PER_USER, 2, 0, 3))
    assert decision == Decision(
        verdict=Verdict.DENY,
        reasons=(
            "the cluster would never start it: QOS solo allows each user 2 GPUs at once and this asks "
            "for 3; ask for 2 or fewer",
        ),
    )


def test_admins_are_refused_too_the_cluster_holds_their_jobs_as_well() -> None:
    assert judged(3, ADMIN, limit(PER_USER, 2, 0, 3)).verdict == Verdict.DENY


def test_a_request_that_fits_the_limit_but_not_beside_running_jobs_is_allowed_and_told_it_waits() -> None:
    decision = judged(2, PERSON, limit(GROUP, 2, 1, 2, held_by=" by your job 41"))
    assert decision == Decision(
        verdict=Verdict.ALLOW,
        reasons=(
            "the cluster will hold it until GPUs are released: QOS team allows 2 GPUs at once for all "
            "its jobs together and 1 is in use now by your job 41; ask for 1 to start sooner, or it "
            "starts when one of those jobs ends",
        ),
    )


def test_a_request_that_fits_every_limit_now_says_nothing_of_them() -> None:
    assert judged(1, PERSON, limit(GROUP, 2, 1, 1), limit("QOS team allows 4 GPUs per job", 4, None, 1)) == (
        Decision(verdict=Verdict.ALLOW)
    )


def test_the_wait_is_told_beside_the_site_s_own_reasons() -> None:
    site = PolicySettings.model_validate({**SITE.model_dump(), "max_gpus_per_job": 1})
    decision = judged(2, PERSON, limit(GROUP, 2, 2, 2), site=site)
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert decision.reasons[0].startswith("2 GPUs asked, your limit is 1 per job")
    assert decision.reasons[1].startswith("the cluster will hold it until GPUs are released")
