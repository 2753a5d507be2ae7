"""`judge` over a request's footprint: each rule on its own, then how they combine."""

from __future__ import annotations

from typing import Any

import pytest

from backends.types import Identity, JobRequest, Target
from policies import Decision, PolicySettings, Usage, Verdict, footprint_for, judge, load_policy

PERSON = Identity(requester="U1", unix_user="alice")
ADMIN = Identity(requester="U0", unix_user="root", is_admin=True)
NOTHING_HELD = Usage()


def policy(**changes: Any) -> PolicySettings:
    """The shipped policy with some keys changed, validated like a site file would be."""
    return PolicySettings.model_validate({**load_policy(None).model_dump(), **changes})


LIMITS = policy(
    max_gpus_per_job=4,
    max_gpus_per_user=8,
    max_time_minutes=24 * 60,
    default_time_minutes=60,
    allowed_partitions=["gpu", "short"],
    allowed_gpu_types=["a100", "l40s"],
    approval_gpu_hours=64,
)


def judged(
    request: JobRequest, identity: Identity, usage: Usage, site: PolicySettings, backend: Target = "slurm"
) -> Decision:
    """The verdict on what the request will hold on `backend`, as the engine asks for it."""
    return judge(footprint_for(request, backend, site, identity), identity, usage, site)


def ask(**fields: Any) -> JobRequest:
    return JobRequest(**{"command": "python train.py", "gpus": 1, "time_limit_minutes": 60, **fields})


def test_a_modest_request_is_allowed_without_reasons() -> None:
    decision = judged(ask(gpus=2, gpu_type="a100", partition="gpu"), PERSON, NOTHING_HELD, LIMITS)
    assert decision == Decision(verdict=Verdict.ALLOW, reasons=())


def test_more_gpus_than_the_per_job_limit_needs_approval_up_to_twice_it() -> None:
    decision = judged(ask(gpus=8), PERSON, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert decision.reasons == ("8 GPUs asked, your limit is 4 per job: ask for 4 or request approval",)


def test_more_than_twice_the_per_job_limit_is_refused() -> None:
    decision = judged(
        ask(gpus=9), PERSON, NOTHING_HELD, policy(max_gpus_per_user=None, approval_gpu_hours=None)
    )
    assert decision.verdict == Verdict.DENY
    (reason,) = decision.reasons
    assert reason.startswith("9 GPUs asked, your limit is 4 per job and at most 8 with an admin's approval")


def test_gpus_per_job_count_every_node() -> None:
    decision = judged(ask(gpus=3, nodes=2), PERSON, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert decision.reasons[0].startswith("6 GPUs asked, your limit is 4 per job")


def test_what_a_person_already_holds_counts_against_their_limit() -> None:
    decision = judged(ask(gpus=4), PERSON, Usage(gpus_in_use=6, jobs_active=2), LIMITS)
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert decision.reasons == (
        "you already use 6 of your 8 GPUs (2 jobs running or pending); this asks 4 more: "
        "ask for 2, wait for a job to end, or request approval",
    )


def test_within_the_per_person_limit_with_what_is_held_is_allowed() -> None:
    assert judged(ask(gpus=2), PERSON, Usage(gpus_in_use=6, jobs_active=3), LIMITS).verdict == Verdict.ALLOW


def test_beyond_twice_the_per_person_limit_is_refused() -> None:
    decision = judged(ask(gpus=4), PERSON, Usage(gpus_in_use=14, jobs_active=4), LIMITS)
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0].startswith("you already use 14 of your 8 GPUs (4 jobs running or pending)")
    assert "beyond the 16 allowed even with approval" in decision.reasons[0]


def test_a_cpu_only_request_is_not_held_against_a_full_allowance() -> None:
    decision = judged(ask(gpus=None, cpu_only=True), PERSON, Usage(gpus_in_use=20, jobs_active=5), LIMITS)
    assert decision.verdict == Verdict.ALLOW


def test_a_site_that_runs_no_cpu_jobs_refuses_a_cpu_only_request() -> None:
    decision = judged(ask(gpus=None, cpu_only=True), PERSON, NOTHING_HELD, policy(allow_cpu_jobs=False))
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0].startswith("this site runs only GPU jobs through the concierge")


def test_a_wall_time_over_the_maximum_is_refused() -> None:
    decision = judged(ask(time_limit_minutes=48 * 60), PERSON, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0].startswith("2 days asked, the longest allowed is 1 day: ask for 1 day or less")


def test_the_maximum_wall_time_itself_is_allowed() -> None:
    assert judged(ask(time_limit_minutes=24 * 60), PERSON, NOTHING_HELD, LIMITS).verdict == Verdict.ALLOW


def test_times_are_printed_as_people_read_them() -> None:
    decision = judged(ask(time_limit_minutes=90), PERSON, NOTHING_HELD, policy(max_time_minutes=75))
    assert decision.reasons[0].startswith("1 h 30 min asked, the longest allowed is 1 h 15 min")


def test_a_partition_not_offered_is_refused_naming_those_that_are() -> None:
    decision = judged(ask(partition="long"), PERSON, NOTHING_HELD, LIMITS)
    assert decision == Decision(
        verdict=Verdict.DENY, reasons=("partition 'long' is not allowed here; allowed: gpu, short",)
    )


def test_any_partition_goes_when_none_are_listed_or_none_is_named() -> None:
    assert judged(ask(partition="long"), PERSON, NOTHING_HELD, policy()).verdict == Verdict.ALLOW
    assert judged(ask(), PERSON, NOTHING_HELD, LIMITS).verdict == Verdict.ALLOW


def test_a_gpu_type_not_offered_is_refused_and_the_site_list_is_case_blind() -> None:
    site = policy(allowed_gpu_types=["A100", " H100 "])
    assert judged(ask(gpu_type="h100"), PERSON, NOTHING_HELD, site).verdict == Verdict.ALLOW
    decision = judged(ask(gpu_type="v100"), PERSON, NOTHING_HELD, site)
    assert decision.reasons == ("GPU type 'v100' is not allowed here; allowed: a100, h100",)


def test_a_batch_job_without_a_command_is_refused_with_a_hint() -> None:
    decision = judged(ask(command=None), PERSON, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.DENY
    assert decision.reasons == (
        "a batch request here needs its command: say what to run, e.g. 'to run python3 train.py'",
    )


def test_required_fields_depend_on_the_workload() -> None:
    site = policy(required_fields={"batch": ["command", "account"], "service": ["image"]})
    service = ask(command=None, workload="service")
    assert judged(service, PERSON, NOTHING_HELD, site).reasons == (
        "a service request here needs its image: "
        "name the container image, e.g. 'image vllm/vllm-openai:latest'",
    )
    assert judged(
        service.model_copy(update={"image": "vllm/vllm-openai"}), PERSON, NOTHING_HELD, site
    ).verdict == (Verdict.ALLOW)
    batch = judged(ask(workload="batch"), PERSON, NOTHING_HELD, site)
    assert batch.reasons == (
        "a batch request here needs its account: name the account to charge, e.g. 'account myproject'",
    )


def test_more_gpu_hours_than_the_threshold_need_approval() -> None:
    decision = judged(ask(gpus=4, time_limit_minutes=20 * 60), PERSON, NOTHING_HELD, LIMITS)
    assert decision == Decision(
        verdict=Verdict.NEEDS_APPROVAL,
        reasons=(
            "this asks 80 GPU-hours (4 GPUs for 20 h); above 64 GPU-hours an admin must approve: "
            "ask for fewer GPUs or less time to run without approval",
        ),
    )


def test_exactly_the_gpu_hour_threshold_is_allowed() -> None:
    assert (
        judged(ask(gpus=4, time_limit_minutes=16 * 60), PERSON, NOTHING_HELD, LIMITS).verdict == Verdict.ALLOW
    )


def test_gpu_hours_use_the_default_time_when_none_is_stated() -> None:
    site = policy(default_time_minutes=10 * 60, approval_gpu_hours=30)
    decision = judged(ask(gpus=4, time_limit_minutes=None), PERSON, NOTHING_HELD, site)
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert "40 GPU-hours (4 GPUs for 10 h)" in decision.reasons[0]


def test_admins_skip_approval_and_the_record_says_so() -> None:
    decision = judged(ask(gpus=8, time_limit_minutes=20 * 60), ADMIN, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.ALLOW
    assert len(decision.reasons) == 2
    assert all(reason.startswith("approval skipped, you are an admin: ") for reason in decision.reasons)


def test_admins_still_get_the_hard_validations() -> None:
    decision = judged(ask(gpus=8, partition="long"), ADMIN, NOTHING_HELD, LIMITS)
    assert decision.verdict == Verdict.DENY
    assert decision.reasons[0] == "partition 'long' is not allowed here; allowed: gpu, short"
    assert judged(ask(gpus=9), ADMIN, NOTHING_HELD, LIMITS).verdict == Verdict.DENY


def test_every_reason_is_given_at_once_refusals_first() -> None:
    request = ask(gpus=8, partition="long", gpu_type="v100", command=None, time_limit_minutes=48 * 60)
    decision = judged(request, PERSON, Usage(gpus_in_use=4, jobs_active=1), LIMITS)
    assert decision.verdict == Verdict.DENY
    assert [reason.split(" ")[0] for reason in decision.reasons] == [
        "partition",
        "GPU",
        "a",
        "2",
        "8",
        "you",
        "this",
    ]


def test_a_person_s_override_replaces_only_what_it_names() -> None:
    site = policy(overrides={"users": {"alice": {"max_gpus_per_job": 8}}})
    assert judged(ask(gpus=8), PERSON, NOTHING_HELD, site).verdict == Verdict.ALLOW
    assert judged(ask(gpus=8), Identity(requester="U2", unix_user="bob"), NOTHING_HELD, site).verdict == (
        Verdict.NEEDS_APPROVAL
    )
    assert judged(ask(gpus=2, time_limit_minutes=49 * 60), PERSON, NOTHING_HELD, site).verdict == Verdict.DENY


def test_a_group_override_applies_and_the_person_s_own_wins() -> None:
    site = policy(
        overrides={
            "groups": {"ml": {"max_time_minutes": 72 * 60, "max_gpus_per_job": 2}},
            "users": {"U9": {"max_gpus_per_job": 6}},
        }
    )
    in_ml = Identity(requester="U8", k8s_groups=("ml",))
    assert judged(ask(time_limit_minutes=60 * 60, gpus=1), in_ml, NOTHING_HELD, site).verdict == Verdict.ALLOW
    assert (
        judged(ask(gpus=3), in_ml, NOTHING_HELD, site).reasons[0].startswith("3 GPUs asked, your limit is 2")
    )
    named_too = Identity(requester="U9", k8s_groups=("ml",))
    assert judged(ask(gpus=6), named_too, NOTHING_HELD, site).verdict == Verdict.ALLOW


def test_the_footprint_fills_only_the_missing_time() -> None:
    filled = footprint_for(ask(time_limit_minutes=None), "slurm", LIMITS)
    assert filled.time_limit_minutes == LIMITS.default_time_minutes
    assert filled.time_source == "site_default"
    stated = footprint_for(ask(time_limit_minutes=17), "slurm", LIMITS)
    assert (stated.time_limit_minutes, stated.time_source) == (17, "stated")


def test_the_footprint_uses_the_person_s_own_default() -> None:
    site = policy(overrides={"users": {"alice": {"default_time_minutes": 240}}})
    assert footprint_for(ask(time_limit_minutes=None), "slurm", site, PERSON).time_limit_minutes == 240
    assert footprint_for(ask(time_limit_minutes=None), "slurm", site).time_limit_minutes == 60


def test_decision_prints_as_the_contract_says() -> None:
    decision = Decision(verdict=Verdict.NEEDS_APPROVAL, reasons=("one", "two"))
    assert decision.to_contract() == {"verdict": "needs_approval", "reasons": ["one", "two"]}


@pytest.mark.parametrize("bad", [{"gpus_in_use": -1}, {"jobs_active": -2}, {"gpus": 3}])
def test_usage_is_validated(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Usage.model_validate(bad)


def service(**fields: Any) -> JobRequest:
    return JobRequest(**{"workload": "service", "image": "nginx", **fields})


def test_a_service_without_a_time_is_judged_as_running_the_longest_allowed() -> None:
    # 3 GPUs × 24 h = 72 GPU-hours > 64: leaving the time out must not ask for less than saying it.
    decision = judged(service(gpus=3), PERSON, NOTHING_HELD, LIMITS, "k8s")
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert decision.reasons == (
        "this asks 72 GPU-hours (3 GPUs for 1 day, as a service with no time limit counts); above 64 "
        "GPU-hours an admin must approve: ask for fewer GPUs or less time to run without approval",
    )
    two = judged(service(gpus=2), PERSON, NOTHING_HELD, LIMITS, "k8s")
    assert two.verdict == Verdict.ALLOW


def test_a_service_without_a_time_where_no_maximum_is_set_needs_approval() -> None:
    unbounded = policy(max_time_minutes=None, approval_gpu_hours=64)
    decision = judged(service(gpus=1), PERSON, NOTHING_HELD, unbounded, "k8s")
    assert decision.verdict == Verdict.NEEDS_APPROVAL
    assert "no GPU-hour bound" in decision.reasons[0]


def test_serving_a_model_with_no_gpu_count_is_judged_as_the_one_gpu_it_gets() -> None:
    served = footprint_for(JobRequest(workload="service", model="Qwen/Qwen2.5-7B-Instruct"), "k8s", LIMITS)
    assert (served.gpus_per_unit, served.total_gpus) == (1, 1)
    sliced = footprint_for(JobRequest(workload="service", model="m/x", mig_profile="1g.10gb"), "k8s", LIMITS)
    assert (sliced.gpu_kind, sliced.total_gpus) == ("mig", 1)
