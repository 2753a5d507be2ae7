"""SlurmBackend over a fake command runner serving captured 22.05 outputs (the real one is
exercised in tests/integration/test_slurm_cluster.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backends.errors import (
    BackendRejected,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)
from backends.footprint import derive_footprint
from backends.protocol import Backend
from backends.slurm.backend import SlurmBackend
from backends.slurm.cli_errors import translate_failure
from backends.slurm.priority import describe_priority, parse_sprio
from backends.slurm.settings import SlurmSettings
from backends.types import Identity, JobRef, JobRequest, JobState, PendingCode, QueueFilter
from tests.fakes.slurm_cli import FakeSlurm
from tests.fakes.unix_accounts import FakeAccounts

X = "\N{MULTIPLICATION SIGN}"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"
SQUEUE = (FIXTURES / "squeue-22.05.json").read_text()
SINFO = (FIXTURES / "sinfo-22.05.txt").read_text()
# What sprio says under priority/basic (sprio.c): the factors exist only with multifactor.
SPRIO_BASIC = translate_failure(
    "sprio",
    1,
    "You are not running a supported priority plugin\n(priority/basic).\n"
    "Only 'priority/multifactor' is supported.\n",
)
NOW = datetime(2026, 11, 23, 21, 31, 0, tzinfo=UTC)
ALICE = Identity(requester="U-ALICE", unix_user="alice")
BOB = Identity(requester="U-BOB", unix_user="bob")
ADMIN = Identity(requester="U-ADMIN", unix_user="carol", is_admin=True)


def backend(
    answers: Mapping[str, str | Exception] | None = None,
    *,
    root: bool = True,
    current: str = "root",
    settings: SlurmSettings | None = None,
) -> tuple[SlurmBackend, FakeSlurm]:
    fake = FakeSlurm(answers or {"squeue": SQUEUE, "sinfo": SINFO})
    slurm = SlurmBackend(
        settings or SlurmSettings(),
        fake,
        running_as_root=root,
        accounts=FakeAccounts(current),
        clock=lambda: NOW,
    )
    return slurm, fake


def test_it_is_a_backend() -> None:
    checked: Backend = backend()[0]  # mypy checks the protocol here
    assert checked.name == "slurm"


REQUEST = derive_footprint(
    JobRequest(gpus=2, gpu_type="a100", time_limit_minutes=60, command="python train.py"),
    "slurm",
    default_minutes=60,
    longest_minutes=None,
)

# -- plan / submit / validate ---------------------------------------------------------------------


def test_plan_as_root_runs_in_the_persons_home_and_costs_nothing() -> None:
    slurm, fake = backend()
    plan = slurm.plan(REQUEST, ALICE, "req-7")
    assert plan.backend == "slurm" and plan.request_id == "req-7"
    assert plan.sbatch_script is not None
    assert "#SBATCH --chdir=/home/alice\n" in plan.sbatch_script
    assert "#SBATCH --comment=gpu-concierge:req-7\n" in plan.sbatch_script
    assert fake.command_count == 0


def test_plan_needs_a_mapped_unix_user() -> None:
    slurm, _ = backend()
    with pytest.raises(RequestInvalid, match="concierge users map U-X"):
        slurm.plan(REQUEST, Identity(requester="U-X"), "r")
    with pytest.raises(RequestInvalid, match="does not exist"):
        slurm.plan(REQUEST, Identity(requester="U-X", unix_user="mallory"), "r")


def test_never_as_root() -> None:
    slurm, _ = backend()
    with pytest.raises(PermissionDenied, match="never submits jobs as root"):
        slurm.plan(REQUEST, Identity(requester="U-R", unix_user="root"), "r")


def test_not_root_submits_only_for_its_own_user() -> None:
    slurm, _ = backend(root=False, current="concierge")
    with pytest.raises(
        PermissionDenied, match="the bot runs as concierge, not root, so it can only submit as concierge"
    ):
        slurm.plan(REQUEST, ALICE, "r")
    own, fake = backend(root=False, current="alice", answers={"sbatch": "42\n"})
    plan = own.plan(REQUEST, ALICE, "r")
    assert plan.sbatch_script is not None and "--chdir" not in plan.sbatch_script
    assert own.submit(plan).job_id == "42"
    assert fake.calls[0][0] == ["sbatch", "--parsable"]


def test_uid_mode_needs_root() -> None:
    slurm, _ = backend(root=False, current="alice", settings=SlurmSettings(submit_mode="uid"))
    with pytest.raises(ConfigurationError, match="needs the bot to run as root"):
        slurm.plan(REQUEST, ALICE, "r")


def test_configured_workdir_wins() -> None:
    slurm, _ = backend(settings=SlurmSettings(workdir="/scratch/jobs"))
    script = slurm.plan(REQUEST, ALICE, "r").sbatch_script
    assert script is not None and "#SBATCH --chdir=/scratch/jobs\n" in script


def test_submit_as_root_passes_uid_gid_and_the_script_on_stdin() -> None:
    slurm, fake = backend({"sbatch": "123;concierge\n"})
    plan = slurm.plan(REQUEST, ALICE, "req-9")
    ref = slurm.submit(plan)
    assert (ref.job_id, ref.cluster, ref.backend) == ("123", "concierge", "slurm")
    ((argv, stdin, as_user),) = fake.calls
    assert argv == ["sbatch", "--parsable", "--uid=alice", "--gid=1002"]
    assert stdin == plan.sbatch_script and as_user is None


def test_submit_that_does_not_return_an_id() -> None:
    slurm, _ = backend({"sbatch": "sbatch: something odd\n"})
    with pytest.raises(BackendRejected, match="did not answer with a job id"):
        slurm.submit(slurm.plan(REQUEST, ALICE, "r"))


def test_validate_reports_a_later_start_and_passes_rejections_on() -> None:
    said = "sbatch: Job 18 to start at 2026-11-23T23:00:00 using 1 processors on nodes vm in partition gpu\n"
    slurm, fake = backend({"sbatch": said})
    warnings = slurm.validate(slurm.plan(REQUEST, ALICE, "r"))
    assert warnings == [
        "it would not start right away: Slurm's estimate is 2026-11-23 23:00 UTC in partition gpu"
    ]
    assert fake.calls[0][0][:2] == ["sbatch", "--test-only"]
    now_said = (
        "sbatch: Job 18 to start at 2026-11-23T21:31:00 using 1 processors on nodes vm in partition gpu\n"
    )
    soon, _ = backend({"sbatch": now_said})
    assert soon.validate(soon.plan(REQUEST, ALICE, "r")) == []
    refused, _ = backend(
        {"sbatch": translate_failure("sbatch", 1, "allocation failure: Invalid partition name specified")}
    )
    with pytest.raises(BackendRejected, match="Invalid partition name specified"):
        refused.validate(refused.plan(REQUEST, ALICE, "r"))


def test_a_plan_for_another_backend_is_refused() -> None:
    slurm, _ = backend({"sbatch": "1"})
    plan = slurm.plan(REQUEST, ALICE, "r").model_copy(update={"backend": "k8s", "sbatch_script": None})
    with pytest.raises(RequestInvalid, match="not Slurm"):
        slurm.submit(plan)


# -- statuses / queue / capacity -------------------------------------------------------------------


def test_statuses_cost_one_call_whatever_the_number_of_jobs() -> None:
    slurm, fake = backend()
    refs = [JobRef(backend="slurm", job_id=str(i)) for i in (72, 73, 74, 75, 76, 77, 78, 999)]
    statuses = slurm.statuses(refs)
    assert fake.command_count == 1
    assert fake.calls[0][0] == ["squeue", "--json", "--states=all"]
    assert {s.ref.job_id for s in statuses} == {"72", "73", "74", "75", "76", "77", "78"}  # 999 is gone
    assert slurm.statuses([]) == [] and fake.command_count == 1


def test_queue_filters_and_orders() -> None:
    slurm, fake = backend()
    mine = slurm.queue(QueueFilter(user="alice", states=(JobState.RUNNING, JobState.PENDING)))
    assert fake.calls[0][0] == ["squeue", "--json", "--states=all", "--user=alice"]
    assert [s.ref.job_id for s in mine] == ["72", "73", "74", "75", "77", "76"]
    assert mine[1].expected_start == datetime(2026, 11, 23, 22, 0, 27, tzinfo=UTC)
    everyone = slurm.queue(QueueFilter(states=(JobState.RUNNING,)))
    assert [(s.ref.job_id, s.user) for s in everyone] == [("72", "alice"), ("78", "bob")]
    assert [s.ref.job_id for s in slurm.queue(QueueFilter(job_ids=("74",)))] == ["74"]
    assert fake.command_count == 3


def test_capacity_is_one_sinfo_call() -> None:
    slurm, fake = backend()
    pools = slurm.capacity()
    assert [(p.pool, p.gpu_type, p.free, p.total) for p in pools] == [
        ("gpu", "a100", 0, 2),
        ("gpu", "l40s", 1, 2),
        ("short", "a100", 0, 2),
        ("short", "l40s", 1, 2),
    ]
    assert fake.command_count == 1 and fake.calls[0][0][0] == "sinfo"


# -- explain -------------------------------------------------------------------------------------


def explain(
    job_id: str, answers: Mapping[str, str | Exception] | None = None
) -> tuple[list[str], PendingCode, str, tuple[str, ...], int]:
    slurm, fake = backend({"sprio": SPRIO_BASIC, **(answers or {"squeue": SQUEUE, "sinfo": SINFO})})
    (reason,) = slurm.explain(JobRef(backend="slurm", job_id=job_id))
    return (
        [c[0][0] for c in fake.calls],
        reason.code,
        reason.sentence,
        reason.alternatives,
        fake.command_count,
    )


def test_resources_with_estimate_holder_and_other_gpu_type() -> None:
    programs, code, sentence, alternatives, count = explain("73")
    assert code is PendingCode.INSUFFICIENT_GPU
    assert programs == ["squeue", "sinfo"] and count == 2
    assert f"2 {X} a100 GPUs in partition gpu are all in use" in sentence
    assert "No pending job is ahead of it" in sentence
    assert "2026-11-23 22:00 UTC" in sentence
    assert "held by job 72" in sentence
    assert alternatives == ()  # only 1 l40s is free (bob holds the other): nothing fits 2 per node


def test_priority_counts_the_jobs_ahead() -> None:
    programs, code, sentence, _, _ = explain("74")
    assert code is PendingCode.PRIORITY
    assert programs == ["squeue", "sinfo", "sprio"]
    assert "1 pending job has a higher priority in partition gpu" in sentence
    assert "2026-11-23 23:00 UTC" in sentence
    assert "The priority factors could not be read (" in sentence and "priority/multifactor" in sentence


def test_priority_names_its_factors_and_what_puts_the_first_job_ahead() -> None:
    # sprio -h -o '%i|%r|%u|%Y|%A|%F|%f|%J|%P|%Q|%B' -j74,73 under multifactor (print.c: %.0f, %.7lf)
    sprio = "74|gpu|alice|1213|13|1000|0.1000000|200|0|0|0\n73|gpu|alice|5213|13|5000|0.5000000|200|0|0|0\n"
    programs, _, sentence, _, _ = explain("74", {"squeue": SQUEUE, "sinfo": SINFO, "sprio": sprio})
    assert programs == ["squeue", "sinfo", "sprio"]
    assert (
        "Its priority is 1213 = fair share 1000 + age 13 + job size 200; the fair-share factor of its "
        "account and user is 0.10 of 1"
    ) in sentence
    assert (
        "First in line is job 73 (alice) with 5213, ahead mostly by fair share (5000 against 1000): its "
        "fair-share factor is 0.50, yours 0.10."
    ) in sentence


def test_partition_time_limit_points_to_partitions_that_allow_it() -> None:
    _, code, sentence, alternatives, _ = explain("75")
    assert code is PendingCode.TIME_LIMIT
    assert "asks for 2 h but partition short allows at most 1 h" in sentence
    assert alternatives == (
        "partition gpu allows up to 1 day: ask for partition gpu",
        "or ask for at most 1 h (--time=01:00:00) to stay on partition short",
    )


def test_held_dependency_and_running_jobs_cost_one_call() -> None:
    programs, code, sentence, _, _ = explain("76")
    assert (programs, code) == (["squeue"], PendingCode.HELD)
    assert "scontrol release 76" in sentence
    _, code, sentence, _, _ = explain("77")
    assert code is PendingCode.DEPENDENCY
    assert "job 72 to finish successfully" in sentence
    _, code, sentence, _, _ = explain("72")
    assert code is PendingCode.NOT_PENDING
    assert "running since 2026-11-23 21:30 UTC on vm" in sentence
    _, code, sentence, _, _ = explain("68")
    assert code is PendingCode.NOT_PENDING and "ended (COMPLETED)" in sentence


def test_unknown_job() -> None:
    slurm, _ = backend()
    with pytest.raises(JobNotFound, match="job 4242 is not in Slurm's queue"):
        slurm.explain(JobRef(backend="slurm", job_id="4242"))


NOW_S = int(NOW.timestamp())


def _queue_with(*jobs: dict[str, object]) -> str:
    return json.dumps({"meta": {}, "errors": [], "jobs": list(jobs)})


def _job(
    job_id: int,
    reason: str,
    *,
    priority: int,
    start: int,
    gres: str,
    minutes: int,
    state: str = "PENDING",
    **extra: object,
) -> dict[str, object]:
    job: dict[str, object] = {
        "job_id": job_id,
        "name": f"j{job_id}",
        "user_name": "alice",
        "job_state": state,
        "state_reason": reason,
        "partition": "gpu",
        "priority": priority,
        "start_time": start,
        "end_time": start + minutes * 60 if start else 0,
        "time_limit": minutes,
        "tres_per_node": gres,
        "node_count": 1,
    }
    job.update(extra)
    return job


def _running(gres: str, minutes: int, **extra: object) -> dict[str, object]:
    """Job 1, running since a minute ago."""
    return _job(1, "None", priority=9, start=NOW_S - 60, gres=gres, minutes=minutes, state="RUNNING", **extra)


def test_gpus_free_but_held_for_a_higher_priority_job_suggest_a_shorter_time() -> None:
    sinfo = "vm|gpu*|mixed|gpu:a100:4|gpu:a100:1(IDX:0)|1-00:00:00|\n"
    queue = _queue_with(
        _running("gres:gpu:a100:1", 90, nodes="vm"),
        _job(2, "Resources", priority=8, start=NOW_S + 90 * 60, gres="gres:gpu:a100:4", minutes=60),
        _job(3, "Priority", priority=7, start=NOW_S + 150 * 60, gres="gres:gpu:a100:1", minutes=240),
    )
    _, code, sentence, alternatives, _ = explain("3", {"squeue": queue, "sinfo": sinfo})
    assert code is PendingCode.PRIORITY
    assert "1 pending job has a higher priority" in sentence
    assert alternatives == (
        f"1 {X} a100 is free now but held for job 2, expected to start at 2026-11-23 23:01 UTC: with a "
        "time limit of at most 1 h 29 min (--time=01:29:00) the job could start now in that gap",
    )


def test_fewer_gpus_and_other_partitions() -> None:
    sinfo = (
        "n1|gpu*|mixed|gpu:a100:4|gpu:a100:3(IDX:0-2)|1-00:00:00|\n"
        "n2|big|idle|gpu:a100:8|gpu:a100:0(IDX:N/A)|2-00:00:00|\n"
        "n3|quick|idle|gpu:h100:4|gpu:h100:0(IDX:N/A)|00:30:00|\n"
    )
    queue = _queue_with(
        _job(5, "Resources", priority=50, start=NOW_S + 3600, gres="gres:gpu:a100:2", minutes=120)
    )
    _, _, _, alternatives, _ = explain("5", {"squeue": queue, "sinfo": sinfo})
    assert alternatives == (
        f"8 {X} a100 are free now on partition big: ask for partition big",
        f"1 {X} a100 is free now on partition gpu: ask for 1 instead of 2",
    )  # h100 on `quick` is free but its 30 min limit is shorter than the 2 h asked


def test_free_gpus_of_another_type_respect_the_backfill_plan() -> None:
    # As on the local cluster: a100s busy until T1, two a100 jobs waiting (T1, T2), l40s idle.
    # A new l40s job starts now only if it ends before T1, when the plan gives the node away.
    sinfo = "vm|gpu*|mixed|gpu:a100:2,gpu:l40s:2|gpu:a100:2(IDX:0-1),gpu:l40s:0(IDX:N/A)|1-00:00:00|\n"
    running = _running("gres:gpu:a100:2", 30, nodes="vm")
    first = _job(2, "Resources", priority=8, start=NOW_S + 29 * 60, gres="gres:gpu:a100:2", minutes=60)
    queue = _queue_with(
        running,
        first,
        _job(3, "Priority", priority=7, start=NOW_S + 89 * 60, gres="gres:gpu:a100:2", minutes=60),
    )
    expected = (
        f"2 {X} l40s are free now on partition gpu: ask for l40s instead, with a time limit of at most "
        "28 min (--time=00:28:00): Slurm has planned waiting jobs on those nodes from 2026-11-23 22:00 UTC"
    )
    for job_id in ("2", "3"):
        _, _, _, alternatives, _ = explain(job_id, {"squeue": queue, "sinfo": sinfo})
        assert alternatives == (expected,)
    # Alone in the queue, a replacement would have the node to itself: no time clause.
    _, _, _, alternatives, _ = explain("2", {"squeue": _queue_with(running, first), "sinfo": sinfo})
    assert alternatives == (f"2 {X} l40s are free now on partition gpu: ask for l40s instead",)


def test_gpu_limit_reasons_read_the_limit_the_use_and_who_holds_it() -> None:
    queue = _queue_with(
        _running("gres:gpu:a100:1", 60, qos="team", account="physics"),
        _job(
            5,
            "None",
            priority=9,
            start=NOW_S - 60,
            gres="gres:gpu:l40s:1",
            minutes=60,
            state="RUNNING",
            qos="team",
            account="physics",
            user_name="bob",
        ),
        _job(
            2,
            "QOSGrpGRES",
            priority=8,
            start=0,
            gres="gres:gpu:a100:2",
            minutes=60,
            qos="team",
            account="physics",
        ),
    )
    limits = (FIXTURES / "assoc-mgr-22.05-constructed.txt").read_text()
    programs, code, sentence, alternatives, _ = explain("2", {"squeue": queue, "scontrol": limits})
    assert programs == ["squeue", "scontrol"]
    assert code is PendingCode.QOS_GPU_LIMIT
    assert sentence.endswith(
        " QOS team allows 2 GPUs at once for all its jobs together; 2 are in use by jobs 1 (yours), "
        "5 (bob): wait for one to end."
    )
    assert alternatives == ()
    empty = "Current Association Manager state\nNo QOS currently cached in Slurm.\n"
    _, _, sentence, _, _ = explain("2", {"squeue": queue, "scontrol": empty})
    assert "could not be read" in sentence and "slurmdbd" in sentence


def _two_a100s_waiting_on_account(account: str) -> str:
    """A queue of job 2: 2 A100s for an hour, held by its account's GPU limit."""
    held = _job(
        2,
        "AssocGrpGRES",
        priority=8,
        start=0,
        gres="gres:gpu:a100:2",
        minutes=60,
        qos="normal",
        account=account,
    )
    return _queue_with(held)


def test_a_job_over_a_limit_by_itself_never_starts_and_says_so() -> None:
    queue = _two_a100s_waiting_on_account("chemistry")
    limits = (FIXTURES / "assoc-mgr-22.05-constructed.txt").read_text()
    _, code, sentence, _, _ = explain("2", {"squeue": queue, "scontrol": limits})
    assert code is PendingCode.ACCOUNT_GPU_LIMIT
    assert sentence == (
        "Job 2 will never start as it is. Account chemistry allows 1 GPU at once for all its jobs "
        "together and this asks for 2, more than that by itself, so Slurm holds it forever: ask for 1 "
        "or fewer."
    )


def test_gpu_limits_of_a_request_come_from_one_assoc_mgr_call() -> None:
    limits = (FIXTURES / "assoc-mgr-22.05-constructed.txt").read_text()
    slurm, fake = backend({"scontrol": limits})
    request = JobRequest(gpus=3, gpu_type="a100", qos="team", command="python3 train.py")
    footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
    read = slurm.gpu_limits(footprint, ALICE)
    assert fake.calls == [
        (
            ["scontrol", "-o", "show", "assoc_mgr", "flags=users,assoc,qos", "users=alice", "qos=team"],
            None,
            None,
        )
    ]
    assert [(limit.words, limit.limit, limit.in_use, limit.asked) for limit in read.limits] == [
        ("QOS team allows 4 GPUs per job", 4, None, 3),
        ("QOS team allows 2 GPUs at once for all its jobs together", 2, 2, 3),
        ("account physics allows 3 GPUs at once for all its jobs together", 3, 2, 3),
    ]
    assert read.note is None


# -- cancel --------------------------------------------------------------------------------------


def test_only_the_owner_or_an_admin_cancels() -> None:
    slurm, fake = backend({"squeue": SQUEUE, "scancel": ""})
    ref = JobRef(backend="slurm", job_id="73")
    with pytest.raises(
        PermissionDenied, match="job 73 belongs to alice; only its owner or an admin can cancel it"
    ):
        slurm.cancel(ref, BOB)
    assert [c[0][0] for c in fake.calls] == ["squeue"]  # no scancel was attempted
    slurm.cancel(ref, ALICE)
    assert fake.calls[-1] == (["scancel", "73"], None, "alice")
    slurm.cancel(ref, ADMIN)
    admin_call = fake.calls[len(fake.calls) - 1]
    assert admin_call[0] == ["scancel", "73"]
    assert admin_call[2] is None


def test_cancel_unknown_or_finished_jobs() -> None:
    slurm, _ = backend({"squeue": SQUEUE, "scancel": ""})
    with pytest.raises(JobNotFound):
        slurm.cancel(JobRef(backend="slurm", job_id="4242"), ALICE)
    with pytest.raises(BackendRejected, match="already ended"):
        slurm.cancel(JobRef(backend="slurm", job_id="68"), ALICE)
    with pytest.raises(PermissionDenied, match="no Unix user is mapped"):
        slurm.cancel(JobRef(backend="slurm", job_id="73"), Identity(requester="U-X"))


def test_a_preview_on_a_qos_nobody_used_yet_reads_its_per_user_limit_from_sacctmgr() -> None:
    answers = {
        "scontrol": (FIXTURES / "assoc-mgr-22.05.txt").read_text(),
        "sacctmgr": (FIXTURES / "sacctmgr-qos-22.05.txt").read_text(),
    }
    slurm, fake = backend(answers)
    request = JobRequest(gpus=2, qos="gpu-per-user", command="sleep 300")
    footprint = derive_footprint(request, "slurm", default_minutes=60, longest_minutes=None)
    (limit,) = slurm.gpu_limits(footprint, ALICE).limits
    assert [call[0][0] for call in fake.calls] == ["scontrol", "sacctmgr"]
    assert (limit.words, limit.limit, limit.in_use, limit.never_fits) == (
        "QOS gpu-per-user allows each user 1 GPU at once",
        1,
        0,
        True,
    )


def test_priority_factors_from_the_captured_sprio() -> None:
    mine, bobs = sorted(parse_sprio((FIXTURES / "sprio-22.05.txt").read_text()), key=lambda r: r.user)
    assert (mine.job_id, mine.priority, mine.fair_share, mine.fair_share_factor, mine.job_size) == (
        "11",
        1719,
        1667,
        0.1666667,
        53,
    )
    assert describe_priority(mine, [bobs]).endswith(
        "First in line is job 10 (bob) with 3386, ahead mostly by fair share (3333 against 1667): its "
        "fair-share factor is 0.33, yours 0.17."
    )


def test_a_job_of_equal_priority_and_an_earlier_id_is_ahead() -> None:
    # Multifactor gives one person's jobs submitted together equal priorities; Slurm then serves them
    # by increasing job id (job_scheduler.c sort_job_queue2).
    queue = _queue_with(
        _running("gres:gpu:a100:2", 30, nodes="vm"),
        _job(2, "Resources", priority=7, start=0, gres="gres:gpu:a100:2", minutes=60),
        _job(3, "Priority", priority=7, start=0, gres="gres:gpu:a100:2", minutes=60),
    )
    _, _, later, _, _ = explain("3", {"squeue": queue, "sinfo": SINFO})
    assert "1 pending job has a higher priority in partition gpu" in later
    _, _, earlier, _, _ = explain("2", {"squeue": queue, "sinfo": SINFO})
    assert "No pending job is ahead of it" in earlier


def test_room_under_a_limit_is_offered_as_what_would_start_sooner() -> None:
    queue = _two_a100s_waiting_on_account("physics")
    limits = (FIXTURES / "assoc-mgr-22.05-constructed.txt").read_text()
    _, _, sentence, alternatives, _ = explain("2", {"squeue": queue, "scontrol": limits})
    assert sentence.endswith(
        " Account physics allows 3 GPUs at once for all its jobs together; 2 are in use: ask for 1 or "
        "wait for one to end."
    )
    assert alternatives == ("1 GPU fits that limit now: cancel this job and ask for 1",)
