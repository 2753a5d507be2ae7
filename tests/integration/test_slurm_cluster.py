"""SlurmBackend against the real local Slurm 22.05: real jobs, real reasons, real refusals, through
both drivers (the commands, and slurmrestd's REST API v0.0.38).

The cluster (scripts/local-slurm.sh): one node with gpu:a100:2 and gpu:l40s:2, partitions `gpu`
(default, 1 day) and `short` (1 h), backfill, users alice and bob. Each test starts from an empty
queue (the `slurm` fixture resets it).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from backends.errors import BackendRejected, BackendUnavailable, PermissionDenied
from backends.footprint import derive_footprint
from backends.slurm.backend import SlurmBackend
from backends.slurm.durations import parse_slurm_instant
from backends.slurm.script import honoured_directives
from backends.slurm.settings import SlurmSettings
from backends.types import (
    Footprint,
    Identity,
    JobRef,
    JobRequest,
    JobState,
    JobStatus,
    PendingCode,
    PendingReason,
    QueueFilter,
)
from tests.slurm_cluster import LocalSlurm

pytestmark = [pytest.mark.slurm, pytest.mark.parametrize("slurm", ["cli", "rest"], indirect=True)]

X = "\N{MULTIPLICATION SIGN}"
ALICE = Identity(requester="U-ALICE", unix_user="alice")
BOB = Identity(requester="U-BOB", unix_user="bob")
ADMIN = Identity(requester="U-ADMIN", unix_user="root", is_admin=True)


def footprint(request: JobRequest) -> Footprint:
    """What the request holds on Slurm, with the shipped policy's defaults, as the engine derives it."""
    return derive_footprint(request, "slurm", default_minutes=60, longest_minutes=2880)


def a100s(count: int, minutes: int, name: str) -> JobRequest:
    return JobRequest(gpus=count, gpu_type="a100", time_limit_minutes=minutes, command="sleep 300", name=name)


def submit(backend: SlurmBackend, request: JobRequest, request_id: str, who: Identity = ALICE) -> JobRef:
    return backend.submit(backend.plan(footprint(request), who, request_id))


def submit_held(slurm: LocalSlurm, backend: SlurmBackend, request: JobRequest, *extra: str) -> JobRef:
    """Our script, submitted by hand with options the product does not offer (--hold, --dependency)."""
    plan = backend.plan(footprint(request), ALICE, "it-by-hand")
    gid = pwd.getpwnam("alice").pw_gid
    out = slurm.run(["sbatch", "--parsable", "--uid=alice", f"--gid={gid}", *extra], plan.sbatch_script)
    return JobRef(backend="slurm", job_id=out.strip())


def status_of(backend: SlurmBackend, ref: JobRef) -> JobStatus | None:
    found = backend.statuses([ref])
    return found[0] if found else None


def only_reason(backend: SlurmBackend, ref: JobRef) -> PendingReason:
    (reason,) = backend.explain(ref)
    return reason


def test_pending_jobs_are_explained_with_alternatives(slurm: LocalSlurm) -> None:
    backend = SlurmBackend(slurm.settings)
    running = submit(backend, a100s(2, 30, "runs"), "it-run")
    slurm.wait_launched(running.job_id)
    resources = submit(backend, a100s(2, 60, "waits-resources"), "it-res")
    priority = submit(backend, a100s(2, 60, "waits-priority"), "it-prio")
    held = submit_held(slurm, backend, a100s(1, 20, "held"), "--hold")
    dependent = submit_held(slurm, backend, a100s(1, 20, "after"), f"--dependency=afterok:{running.job_id}")
    too_long = submit(
        backend,
        JobRequest(
            gpus=1,
            gpu_type="l40s",
            time_limit_minutes=120,
            partition="short",
            command="sleep 300",
            name="long",
        ),
        "it-long",
    )
    refs = [running, resources, priority, held, dependent, too_long]

    def settled() -> bool:
        by_id = {s.ref.job_id: s for s in backend.statuses(refs)}
        return (
            by_id[resources.job_id].reason == "Resources"
            and by_id[resources.job_id].expected_start is not None
            and by_id[priority.job_id].reason == "Priority"
            and by_id[too_long.job_id].reason == "PartitionTimeLimit"
        )

    slurm.wait_for(settled, "the scheduler to give reasons and a backfill estimate")

    # One squeue call, however many jobs are asked about.
    before = backend.runner.command_count
    statuses = {s.ref.job_id: s for s in backend.statuses(refs)}
    assert backend.runner.command_count - before == 1
    assert set(statuses) == {ref.job_id for ref in refs}
    assert statuses[running.job_id].request_id == "it-run"
    assert {s.user for s in statuses.values()} == {"alice"}
    assert statuses[held.job_id].reason == "JobHeldUser"
    assert statuses[dependent.job_id].reason == "Dependency"

    reason = only_reason(backend, running)
    assert reason.code is PendingCode.NOT_PENDING and "running since" in reason.sentence

    reason = only_reason(backend, resources)
    assert reason.code is PendingCode.INSUFFICIENT_GPU
    assert f"2 {X} a100 GPUs in partition gpu are all in use" in reason.sentence
    assert f"held by job {running.job_id}" in reason.sentence
    (l40s_advice,) = [
        a for a in reason.alternatives if a.startswith(f"2 {X} l40s are free now on partition gpu")
    ]
    assert "ask for l40s instead, with a time limit of at most" in l40s_advice
    # The estimate is the one `squeue --start` prints.
    start_line = slurm.run(["squeue", "--start", "-h", "-j", resources.job_id, "-o", "%S"]).strip()
    assert reason.expected_start == parse_slurm_instant(start_line)

    reason = only_reason(backend, priority)
    assert reason.code is PendingCode.PRIORITY
    assert "1 pending job has a higher priority in partition gpu" in reason.sentence
    assert any(a.startswith(f"2 {X} l40s are free now on partition gpu") for a in reason.alternatives)

    reason = only_reason(backend, held)
    assert reason.code is PendingCode.HELD and f"scontrol release {held.job_id}" in reason.sentence

    reason = only_reason(backend, dependent)
    assert reason.code is PendingCode.DEPENDENCY
    assert f"job {running.job_id} to finish successfully" in reason.sentence

    reason = only_reason(backend, too_long)
    assert reason.code is PendingCode.TIME_LIMIT
    assert "asks for 2 h but partition short allows at most 1 h" in reason.sentence
    assert "partition gpu allows up to 1 day: ask for partition gpu" in reason.alternatives

    # Capacity matches what runs: alice's a100 job holds both a100s; nothing holds an l40s.
    pools = {(p.pool, p.gpu_type): p for p in backend.capacity()}
    running_gpus = sum(g.count for s in statuses.values() if s.state is JobState.RUNNING for g in s.gpus)
    assert running_gpus == 2
    assert (pools[("gpu", "a100")].allocated, pools[("gpu", "a100")].free) == (2, 0)
    assert (pools[("gpu", "l40s")].allocated, pools[("gpu", "l40s")].free) == (0, 2)
    assert pools[("short", "l40s")].max_time_minutes == 60

    # The queue as alice sees it: running first, then by priority.
    mine = backend.queue(QueueFilter(user="alice"))
    assert [s.ref.job_id for s in mine][:3] == [running.job_id, resources.job_id, priority.job_id]

    # Following the advice works on the real scheduler: l40s with the suggested time starts now,
    # while the same job with the original hour waits behind the plan.
    suggested = re.search(r"--time=(\d\d):(\d\d):00", l40s_advice)
    assert suggested is not None
    minutes = int(suggested[1]) * 60 + int(suggested[2])
    as_advised = submit(
        backend,
        JobRequest(gpus=2, gpu_type="l40s", time_limit_minutes=minutes, command="sleep 300"),
        "it-advised",
    )
    unadvised = submit(
        backend,
        JobRequest(gpus=2, gpu_type="l40s", time_limit_minutes=60, command="sleep 300"),
        "it-unadvised",
    )
    slurm.wait_launched(as_advised.job_id)  # it runs: the batch step is on the node
    waiting = status_of(backend, unadvised)
    assert waiting is not None and waiting.state is JobState.PENDING


def test_jobs_run_as_the_person_and_only_the_owner_cancels(slurm: LocalSlurm, tmp_path: Path) -> None:
    settings = slurm.settings.model_copy(update={"output_pattern": "concierge-%x-%j.out"})  # alice's home
    backend = SlurmBackend(settings)
    request = JobRequest(
        gpus=1, gpu_type="l40s", time_limit_minutes=5, name="whoami", command="id -un; id -gn; pwd"
    )
    done = submit(backend, request, "it-whoami")
    quiet = SlurmBackend(slurm.settings)  # output to /dev/null: only the whoami job's is read
    waiting = submit(quiet, a100s(2, 10, "cancel-me"), "it-cancel")
    slurm.wait_for(
        lambda: (s := status_of(backend, done)) is not None and s.state is JobState.COMPLETED,
        "the whoami job to complete (squeue keeps it for MinJobAge)",
    )
    output = Path(f"/home/alice/concierge-whoami-{done.job_id}.out")
    try:
        assert output.read_text().split() == ["alice", "alice", "/home/alice"]
        assert pwd.getpwuid(output.stat().st_uid).pw_name == "alice"
    finally:
        output.unlink(missing_ok=True)
    slurm.wait_launched(waiting.job_id)  # nothing else runs, so it starts; cancel it once launched
    owner_group = slurm.run(["squeue", "-h", "-j", waiting.job_id, "-o", "%u %g"]).split()
    assert owner_group == ["alice", "alice"]  # --gid too: without it the job would keep root's group

    with pytest.raises(PermissionDenied, match=f"job {waiting.job_id} belongs to alice"):
        backend.cancel(waiting, BOB)
    # The controller refuses bob as well, whatever our check says.
    refused = subprocess.run(
        ["runuser", "-u", "bob", "--", "scancel", waiting.job_id], capture_output=True, text=True, check=False
    )
    assert "Access/permission denied" in refused.stderr
    with pytest.raises(PermissionDenied, match="Access/permission denied"):
        backend.runner.run(["scancel", waiting.job_id], as_user="bob")
    still = status_of(backend, waiting)
    assert still is not None and not still.state.is_final

    backend.cancel(waiting, ALICE)
    slurm.wait_for(
        lambda: (s := status_of(backend, waiting)) is not None and s.state is JobState.CANCELLED, "the cancel"
    )


def test_admin_cancels_anyones_job(slurm: LocalSlurm) -> None:
    backend = SlurmBackend(slurm.settings)
    ref = submit(backend, a100s(1, 10, "bobs"), "it-bob", who=BOB)
    slurm.wait_launched(ref.job_id)
    backend.cancel(ref, ADMIN)
    slurm.wait_for(
        lambda: (s := status_of(backend, ref)) is not None and s.state is JobState.CANCELLED, "the cancel"
    )


@pytest.mark.parametrize(
    "command",
    [
        "sleep 1\n#SBATCH --partition=short\n#SBATCH --job-name=evil",
        "#SBATCH --partition=short\nsleep 1",
        "\n\n#SBATCH --partition=short --time=1\n# comment\necho $(whoami) 'x' \"y\"",
    ],
)
def test_sbatch_lines_in_a_command_are_not_honoured(slurm: LocalSlurm, command: str) -> None:
    backend = SlurmBackend(slurm.settings)
    request = JobRequest(command=command, name="inj\n#SBATCH --partition=short", gpus=1, gpu_type="l40s")
    plan = backend.plan(footprint(request), ALICE, "it-by-hand")  # as submit_held makes it
    assert plan.sbatch_script is not None
    assert not any(
        "short" in line for line in honoured_directives(plan.sbatch_script) if "--partition" in line
    )
    ref = submit_held(slurm, backend, request, "--hold")
    (job,) = [
        j for j in json.loads(slurm.run(["squeue", "--json"]))["jobs"] if str(j["job_id"]) == ref.job_id
    ]
    assert job["partition"] == "gpu"  # the default, not `short`
    assert job["name"] == "inj-SBATCH-partition-short"
    assert job["time_limit"] == 60  # the partition default, not --time=1
    # The script Slurm stored is ours, byte for byte: the command is in it unchanged.
    stored = slurm.run(["scontrol", "write", "batch_script", ref.job_id, "-"])
    assert stored == plan.sbatch_script


def test_sbatch_rejections_are_clear(slurm: LocalSlurm) -> None:
    backend = SlurmBackend(slurm.settings)
    run = uuid.uuid4().hex[:8]  # finished jobs of earlier runs stay listed for MinJobAge
    # slurmrestd cannot ask without submitting (no --test-only): there the submission refuses.
    ask = backend.validate if slurm.settings.driver == "cli" else backend.submit
    bad_partition = backend.plan(
        footprint(JobRequest(command="true", gpus=1, partition="nope")), ALICE, f"it-bad-{run}"
    )
    with pytest.raises(BackendRejected, match=r"Invalid partition name specified.*`concierge free`"):
        ask(bad_partition)
    with pytest.raises(BackendRejected, match="Invalid partition name specified"):
        backend.submit(bad_partition)
    shard = backend.plan(footprint(JobRequest(command="true", shared=True)), ALICE, f"it-shard-{run}")
    # 22.05's slurmrestd refuses an unknown GRES while parsing the job, before slurmctld sees it.
    refusal = {"cli": r"Invalid generic resource \(gres\) specification", "rest": "Failure during parsing"}
    with pytest.raises(BackendRejected, match=refusal[slurm.settings.driver]):
        backend.submit(shard)
    too_many = backend.plan(
        footprint(JobRequest(command="true", gpus=3, gpu_type="a100")), ALICE, f"it-many-{run}"
    )
    with pytest.raises(
        BackendRejected, match=r"Requested node configuration is not available.*fewer per node"
    ):
        ask(too_many)
    assert backend.validate(backend.plan(footprint(a100s(1, 10, "fine")), ALICE, f"it-fine-{run}")) == []
    tried = {f"it-bad-{run}", f"it-shard-{run}", f"it-many-{run}", f"it-fine-{run}"}
    left = [
        (s.request_id, s.state) for s in backend.queue(QueueFilter(user="alice")) if s.request_id in tried
    ]
    # None submitted; 22.05's slurmrestd records the one it refuses for its node configuration as
    # a job that FAILED at once (reason BadConstraints), never run.
    assert left == ([] if slurm.settings.driver == "cli" else [(f"it-many-{run}", JobState.FAILED)])


def test_unreachable_controller_and_missing_commands(slurm: LocalSlurm, tmp_path: Path) -> None:
    if slurm.settings.driver == "rest":  # slurmrestd down: nothing listens on its port
        down = SlurmBackend(slurm.settings.model_copy(update={"rest_url": "http://127.0.0.1:1"}))
        with pytest.raises(BackendUnavailable, match="could not be reached"):
            down.statuses([JobRef(backend="slurm", job_id="1")])
        return
    # A copy of the real configuration pointing at a port where no slurmctld listens: the real
    # clients fail as they would with the controller down, and the shared one stays up.
    conf = tmp_path / "slurm.conf"
    text = Path("/etc/slurm/slurm.conf").read_text()
    conf.write_text(text + "\nSlurmctldPort=1\nMessageTimeout=2\n")
    gres = Path("/etc/slurm/gres.conf")
    if gres.exists():
        (tmp_path / "gres.conf").write_text(gres.read_text())
    dead = SlurmBackend(SlurmSettings(slurm_conf=conf, command_timeout_s=30))
    with pytest.raises(BackendUnavailable, match="controller may be down or unreachable"):
        dead.statuses([JobRef(backend="slurm", job_id="1")])
    with pytest.raises(BackendUnavailable, match=r"could not be reached.*Try again"):
        dead.capacity()
    with pytest.raises(BackendUnavailable, match="could not be reached"):
        dead.submit(dead.plan(footprint(a100s(1, 5, "nowhere")), ALICE, "it-dead"))

    empty = tmp_path / "bin"
    empty.mkdir()
    missing = SlurmBackend(SlurmSettings(bin_dir=empty))
    with pytest.raises(BackendUnavailable, match=r"squeue is not in .*slurm-client"):
        missing.queue(QueueFilter())
    assert os.path.exists("/usr/bin/squeue")  # the shared cluster's clients are untouched
