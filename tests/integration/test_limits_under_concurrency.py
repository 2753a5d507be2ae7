"""A person's GPU limit holds when many submits arrive at once, on the real Slurm and both databases.

Each submitter has its own store connection pool and its own engine, as separate CLI processes or
bot replicas would. All previews are made first; then every Submit is released at the same moment
by a barrier. Exactly the limit may be admitted: judging and recording are one step per person
(`Store.admit`). Usage is the cluster's truth, so a job the person started with plain sbatch counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from backends.errors import PolicyDenied
from backends.slurm.backend import SlurmBackend
from backends.types import Identity, QueueFilter
from bot.engine import Concierge, Prepared
from bot.store import Store
from bot.understanding.grammar import understand
from policies import load_policy
from tests.slurm_cluster import LocalSlurm

pytestmark = pytest.mark.slurm

ALICE = Identity(requester="U-ALICE", unix_user="alice")
POLICY = load_policy(None)  # the shipped limit: 8 GPUs per person
ONE_GPU = "1 a100 for 1 hour to run sleep 600"


def _engine(database_url: str, slurm: LocalSlurm) -> tuple[Concierge, Store]:
    store = Store(database_url)
    return Concierge(store, {"slurm": SlurmBackend(slurm.settings)}, understand, POLICY), store


def _race(database_url: str, slurm: LocalSlurm, submitters: int) -> tuple[int, list[str]]:
    """(how many were admitted, why the others were not), all submits released at once."""
    Store(database_url).migrate()
    engines = [_engine(database_url, slurm) for _ in range(submitters)]
    previews = [concierge.prepare(ALICE, ONE_GPU, "cli", check=False) for concierge, _ in engines]
    assert all(preview.allowed for preview in previews)
    gate = threading.Barrier(submitters)

    def submit(concierge: Concierge, preview: Prepared) -> str | None:
        gate.wait()
        try:
            concierge.submit(preview)
        except PolicyDenied as refused:
            return refused.message
        return None

    with ThreadPoolExecutor(max_workers=submitters) as pool:
        answers = list(pool.map(submit, [c for c, _ in engines], previews))
    for _, store in engines:
        store.close()
    refusals = [answer for answer in answers if answer is not None]
    return submitters - len(refusals), refusals


def _our_jobs(slurm: LocalSlurm) -> int:
    jobs = SlurmBackend(slurm.settings).queue(QueueFilter(user="alice"))
    return sum(1 for job in jobs if job.request_id is not None and not job.state.is_final)


@pytest.mark.parametrize("submitters", [10, 50])
def test_parallel_submits_admit_exactly_the_limit(
    slurm: LocalSlurm, database_url: str, submitters: int
) -> None:
    admitted, refusals = _race(database_url, slurm, submitters)
    assert admitted == POLICY.max_gpus_per_user == 8
    assert _our_jobs(slurm) == 8
    assert [why for why in refusals if "you already use 8 of your 8 GPUs" not in why] == []
    store = Store(database_url)
    try:
        assert sum(r.gpus for r in store.in_flight(ALICE.requester)) == 8
    finally:
        store.close()


def test_a_job_submitted_with_plain_sbatch_counts(slurm: LocalSlurm, database_url: str) -> None:
    slurm.run(
        ["sbatch", "--hold", "--gres=gpu:a100:2", "--time=10", "--output=/dev/null", "--wrap", "sleep 600"],
        as_user="alice",
    )
    admitted, refusals = _race(database_url, slurm, 10)
    assert admitted == 6
    assert all("you already use 8 of your 8 GPUs (7 jobs running or pending)" in why for why in refusals)


def test_a_job_that_ended_no_longer_counts_without_a_tracker(slurm: LocalSlurm, database_url: str) -> None:
    concierge, store = _engine(database_url, slurm)
    store.migrate()
    try:
        big = concierge.prepare(ALICE, "2 a100 for 1 hour to run true", "cli", check=False)
        ref = concierge.submit(big)
        wait_until(slurm, lambda: _ended(slurm, ref.job_id), "the 2-GPU job to end")
        # No tracker ran: the store still says `submitted`, the cluster says it ended.
        assert store.request(big.request_id).outcome in ("submitted", "running")
        eight = concierge.prepare(ALICE, "8 a100 for 1 hour to run sleep 60", "cli", check=False)
        assert eight.decision.verdict == "needs_approval"  # 8 > the 4 per job, not the per-person limit
        assert not any("you already use" in reason for reason in eight.decision.reasons)
    finally:
        store.close()


def _ended(slurm: LocalSlurm, job_id: str) -> bool:
    jobs = SlurmBackend(slurm.settings).queue(QueueFilter(job_ids=(job_id,)))
    return not jobs or jobs[0].state.is_final


def wait_until(slurm: LocalSlurm, condition: Callable[[], bool], what: str) -> None:
    slurm.wait_for(condition, what, timeout_s=60)
