"""QOS and association GPU limits, priority factors and accounted GPU-hours on the real local Slurm 22.05
with accounting (slurmdbd), multifactor priority and AccountingStorageEnforce=associations,limits,qos.

The cluster (scripts/local-slurm.sh): one node with gpu:a100:2 and gpu:l40s:2; QOS `gpu-group`
(GrpTRES=gres/gpu=2) and `gpu-per-user` (MaxTRESPerUser=gres/gpu=1) open to alice and bob; account
`vision` (GrpTRES=gres/gpu=1) with alice and bob. Every number below is what Slurm itself reports
for the jobs each test starts.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta

import pytest

from backends.footprint import derive_footprint
from backends.slurm.backend import SlurmBackend
from backends.slurm.limits import parse_assoc_mgr
from backends.types import Footprint, Identity, JobRef, JobRequest, PendingCode, PendingReason
from bot.engine import Concierge
from bot.settings import RollupSettings
from bot.store import Store
from bot.telemetry.reporting import DigestMaker, accounting_reader
from bot.understanding.grammar import understand
from policies import Verdict, load_policy
from tests.slurm_cluster import LocalSlurm

pytestmark = pytest.mark.slurm
# Over slurmrestd the limits come from its slurmdbd plugin (openapi/dbv0.0.38) and their use from the
# queue: the same sentences.
BOTH_DRIVERS = pytest.mark.parametrize("slurm", ["cli", "rest"], indirect=True)

ALICE = Identity(requester="U-ALICE", unix_user="alice")
BOB = Identity(requester="U-BOB", unix_user="bob")
GROUP_QOS = "gpu-group"
PER_USER_QOS = "gpu-per-user"
LIMITED_ACCOUNT = "vision"


def _footprint(request: JobRequest) -> Footprint:
    return derive_footprint(request, "slurm", default_minutes=60, longest_minutes=2880)


def _gpus(count: int, kind: str, **more: object) -> JobRequest:
    return JobRequest(gpus=count, gpu_type=kind, time_limit_minutes=30, command="sleep 300", **more)  # type: ignore[arg-type]


def _submit(backend: SlurmBackend, request: JobRequest, who: Identity = ALICE) -> JobRef:
    return backend.submit(backend.plan(_footprint(request), who, f"it-limits-{time.monotonic_ns()}"))


def _waiting_for(slurm: LocalSlurm, backend: SlurmBackend, ref: JobRef, reason: str) -> PendingReason:
    def settled() -> bool:
        found = backend.statuses([ref])
        return bool(found) and found[0].reason == reason

    slurm.wait_for(settled, f"job {ref.job_id} to pend with {reason}")
    (explained,) = backend.explain(ref)
    return explained


def _require_accounting() -> None:
    said = subprocess.run(
        ["scontrol", "-o", "show", "assoc_mgr", "flags=qos", f"qos={GROUP_QOS},{PER_USER_QOS}"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
    )
    if said.returncode != 0 or not {GROUP_QOS, PER_USER_QOS} <= set(parse_assoc_mgr(said.stdout).qos):
        pytest.skip(
            f"the local Slurm has no QOS {GROUP_QOS} (accounting with slurmdbd): scripts/local-slurm.sh up"
        )


@pytest.fixture
def limited(slurm: LocalSlurm) -> LocalSlurm:
    _require_accounting()
    return slurm


@BOTH_DRIVERS
def test_a_qos_group_limit_is_explained_with_the_use_and_the_jobs_holding_it(limited: LocalSlurm) -> None:
    backend = SlurmBackend(limited.settings)
    bobs = _submit(backend, _gpus(1, "a100", qos=GROUP_QOS), BOB)
    alices = _submit(backend, _gpus(1, "l40s", qos=GROUP_QOS))
    limited.wait_launched(bobs.job_id)
    limited.wait_launched(alices.job_id)
    waiting = _submit(backend, _gpus(1, "l40s", qos=GROUP_QOS))
    explained = _waiting_for(limited, backend, waiting, "QOSGrpGRES")
    assert explained.code is PendingCode.QOS_GPU_LIMIT
    assert explained.sentence.endswith(
        f" QOS {GROUP_QOS} allows 2 GPUs at once for all its jobs together; 2 are in use by jobs "
        f"{bobs.job_id} (bob), {alices.job_id} (yours): wait for one to end."
    )


@BOTH_DRIVERS
def test_a_qos_per_user_limit_names_the_person_s_own_jobs(limited: LocalSlurm) -> None:
    backend = SlurmBackend(limited.settings)
    running = _submit(backend, _gpus(1, "a100", qos=PER_USER_QOS))
    limited.wait_launched(running.job_id)
    waiting = _submit(backend, _gpus(1, "l40s", qos=PER_USER_QOS))
    explained = _waiting_for(limited, backend, waiting, "QOSMaxGRESPerUser")
    assert explained.sentence.endswith(
        f" QOS {PER_USER_QOS} allows each user 1 GPU at once; 1 is in use by your job {running.job_id}: "
        "wait for one to end."
    )


@BOTH_DRIVERS
def test_an_account_group_limit_is_explained_with_real_numbers(limited: LocalSlurm) -> None:
    backend = SlurmBackend(limited.settings)
    running = _submit(backend, _gpus(1, "a100", account=LIMITED_ACCOUNT))
    limited.wait_launched(running.job_id)
    waiting = _submit(backend, _gpus(1, "l40s", account=LIMITED_ACCOUNT))
    explained = _waiting_for(limited, backend, waiting, "AssocGrpGRES")
    assert explained.code is PendingCode.ACCOUNT_GPU_LIMIT
    assert explained.sentence.endswith(
        f" Account {LIMITED_ACCOUNT} allows 1 GPU at once for all its jobs together; 1 is in use by "
        f"your job {running.job_id}: wait for one to end."
    )


def test_a_priority_job_is_explained_with_its_sprio_factors(limited: LocalSlurm) -> None:
    backend = SlurmBackend(limited.settings)
    running = _submit(backend, _gpus(2, "a100"))
    limited.wait_launched(running.job_id)
    first = _submit(backend, _gpus(2, "a100"), BOB)
    second = _submit(backend, _gpus(2, "a100"))
    explained = _waiting_for(limited, backend, second, "Priority")
    assert explained.code is PendingCode.PRIORITY
    assert "Its priority is " in explained.sentence and "fair share " in explained.sentence
    assert f"First in line is job {first.job_id} (bob)" in explained.sentence


@pytest.fixture
def store() -> Store:
    """One database is enough here: the store's own behaviour is tested on both elsewhere."""
    memory = Store("sqlite://")
    memory.migrate()
    return memory


@BOTH_DRIVERS
def test_a_request_over_a_slurm_limit_is_refused_before_submit(limited: LocalSlurm, store: Store) -> None:
    backend = SlurmBackend(limited.settings)
    concierge = Concierge(store, {"slurm": backend}, understand, load_policy(None))
    prepared = concierge.prepare(ALICE, f"2 GPUs for 1 hour, qos {PER_USER_QOS}, to run sleep 300", "cli")
    assert prepared.decision.verdict == Verdict.DENY
    assert prepared.decision.reasons[0] == (
        f"the cluster would never start it: QOS {PER_USER_QOS} allows each user 1 GPU at once and this "
        "asks for 2; ask for 1 or fewer"
    )
    listed = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    assert listed.stdout.strip() == ""  # nothing was submitted


def test_accounting_counts_a_job_that_ended_between_samples(limited: LocalSlurm, store: Store) -> None:
    backend = SlurmBackend(limited.settings)
    start = datetime.now(UTC) - timedelta(seconds=5)
    brief = _submit(backend, JobRequest(gpus=2, gpu_type="l40s", time_limit_minutes=5, command="sleep 2"))

    def recorded() -> bool:
        return any(
            a.job_id == brief.job_id and a.end is not None
            for a in backend.gpu_allocations(start, datetime.now(UTC))
        )

    limited.wait_for(recorded, f"accounting to record job {brief.job_id}'s end")
    (allocation,) = [a for a in backend.gpu_allocations(start, datetime.now(UTC)) if a.job_id == brief.job_id]
    assert (allocation.owner, allocation.gpus) == ("alice", 2)
    assert allocation.end is not None
    ran = (allocation.end - allocation.start).total_seconds()
    maker = DigestMaker(
        store.telemetry(RollupSettings()),
        lambda: ([], []),
        read_allocations=accounting_reader({"slurm": backend}),
    )
    report = maker.make(start, datetime.now(UTC) + timedelta(minutes=1), chart=False)
    digest = report.digest
    cluster = digest.cluster
    assert cluster.allocated_from == "accounting"
    # The period is whole minutes, so earlier tests' jobs may share it: all of them, by accounting.
    everyone = backend.gpu_allocations(digest.since, digest.until)
    assert cluster.allocated_gpu_hours == pytest.approx(
        sum(a.hours_within(digest.since, digest.until) for a in everyone)
    )
    assert cluster.allocated_gpu_hours >= 2 * ran / 3600 > 0
    assert cluster.unmeasured_gpu_hours == cluster.allocated_gpu_hours  # no sample ever saw them
