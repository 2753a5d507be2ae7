"""`judge`: a request, who asks and what they already hold → allow, deny or needs_approval.

Pure functions: no cluster, no store, no clock, so the same inputs always give the same answer
and a test can show every rule on its own.

Which rules refuse and which ask for approval:
- Refused outright (deny), for everyone, admins included: a partition or GPU type the site does
  not offer to the concierge, a missing required field, a wall time over the maximum, and GPU
  counts beyond twice a limit (per job or per person). These are either things the cluster cannot
  or must not run, or a size so far beyond the limit that it is more likely a slip than a plan;
  an admin who means it raises the limit in the site's policy file.
- Needs an admin's approval: more GPUs than a limit but no more than twice it, and more GPU-hours
  than the approval threshold. These are legitimate asks that only cost the site more.
- Admins skip approval (they would be the approvers), and the reasons still say what was skipped,
  so the record shows it.
- The cluster's own GPU limits (Slurm QOS/association, in `Usage.cluster_limits`): a request over
  one by itself is refused, admins included, because the cluster would never start it; one that
  fits but not beside the jobs running now is allowed, with a reason saying it will wait and why.
Every reason is collected, not just the first, so a person fixes everything in one go.
"""

from __future__ import annotations

from backends.durations_text import duration
from backends.footprint import derive_footprint
from backends.types import Footprint, GpuKind, Identity, JobRequest, Target
from policies.decision import Decision, Usage, Verdict
from policies.rules import PolicyLimits, PolicySettings

APPROVAL_HEADROOM = 2  # up to this many times a GPU limit can be approved; beyond it is refused

# What to tell a person who left out a required field, in their words rather than the field's.
FIELD_HINTS = {
    "command": "say what to run, e.g. 'to run python3 train.py'",
    "image": "name the container image, e.g. 'image vllm/vllm-openai:latest'",
    "time_limit_minutes": "say how long it needs, e.g. 'for 4 hours'",
    "gpus": "say how many GPUs, e.g. '2 GPUs'",
    "gpu_type": "name the GPU type, e.g. 'A100'",
    "partition": "name the partition, e.g. 'on partition gpu'",
    "account": "name the account to charge, e.g. 'account myproject'",
    "namespace": "name the namespace, e.g. 'in namespace team-a'",
    "name": "give the job a name, e.g. 'named my-run'",
}


def footprint_for(
    request: JobRequest, backend: Target, policy: PolicySettings, identity: Identity | None = None
) -> Footprint:
    """What the request will hold on `backend`, with this person's defaults where nothing was stated."""
    limits = policy.limits_for(identity)
    return derive_footprint(
        request,
        backend,
        default_minutes=limits.default_time_minutes,
        longest_minutes=limits.max_time_minutes,
    )


def judge(footprint: Footprint, identity: Identity, usage: Usage, policy: PolicySettings) -> Decision:
    """The verdict on what the job will hold (its footprint), never on the words alone."""
    limits = policy.limits_for(identity)
    request = footprint.request
    never, waits = _cluster_limit_reasons(usage)
    denials = [
        *never,
        *_placement_denials(request, limits),
        *_missing_fields(footprint, limits),
        *_time_denials(footprint, limits),
        *_cpu_job_denials(footprint, limits),
    ]
    approvals: list[str] = []
    for verdict, reason in (*_gpu_count_rules(footprint, usage, limits), *_gpu_hour_rules(footprint, limits)):
        (denials if verdict == Verdict.DENY else approvals).append(reason)
    if denials:
        return Decision(verdict=Verdict.DENY, reasons=(*denials, *approvals, *waits))
    if approvals and identity.is_admin:
        skipped = tuple(f"approval skipped, you are an admin: {reason}" for reason in approvals)
        return Decision(verdict=Verdict.ALLOW, reasons=(*skipped, *waits))
    if approvals:
        return Decision(verdict=Verdict.NEEDS_APPROVAL, reasons=(*approvals, *waits))
    return Decision(verdict=Verdict.ALLOW, reasons=tuple(waits))


def gpu_count_reasons(
    footprint: Footprint, identity: Identity, usage: Usage, policy: PolicySettings
) -> list[str]:
    """What the GPU limits alone say of a footprint (the GPU reasons `judge` gives), for a request
    that cannot be judged whole yet: its other problems and these are then told at once."""
    return [reason for _, reason in _gpu_count_rules(footprint, usage, policy.limits_for(identity))]


def _placement_denials(request: JobRequest, limits: PolicyLimits) -> list[str]:
    reasons = []
    allowed = limits.allowed_partitions
    if request.partition is not None and allowed is not None and request.partition not in allowed:
        reasons.append(f"partition '{request.partition}' is not allowed here; allowed: {_listed(allowed)}")
    gpu_type, allowed_types = request.gpu_type, limits.allowed_gpu_types
    if gpu_type is not None and allowed_types is not None and gpu_type not in allowed_types:
        reasons.append(f"GPU type '{gpu_type}' is not allowed here; allowed: {_listed(allowed_types)}")
    return reasons


def _missing_fields(footprint: Footprint, limits: PolicyLimits) -> list[str]:
    request = footprint.request
    workload = request.workload or "batch"
    # What the footprint fills in from the site's defaults counts as given.
    given = {"time_limit_minutes": footprint.time_limit_minutes, "gpus": footprint.gpus_per_unit}
    reasons = []
    for field in limits.required_fields.for_workload(request.workload):
        if given.get(field, getattr(request, field)) is None:
            label = field.replace("_", " ")
            hint = FIELD_HINTS.get(field, f"state its {label}")
            reasons.append(f"a {workload} request here needs its {label}: {hint}")
    return reasons


def _time_denials(footprint: Footprint, limits: PolicyLimits) -> list[str]:
    asked = footprint.time_limit_minutes
    longest = limits.max_time_minutes
    if asked is None or longest is None or asked <= longest:
        return []
    return [
        f"{duration(minutes=asked)} asked, the longest allowed is {duration(minutes=longest)}: "
        f"ask for {duration(minutes=longest)} or less (checkpoint and resubmit to run longer)"
    ]


def _cpu_job_denials(footprint: Footprint, limits: PolicyLimits) -> list[str]:
    if footprint.gpu_kind is not GpuKind.NONE or limits.allow_cpu_jobs:
        return []
    return ["this site runs only GPU jobs through the concierge: say how many GPUs (e.g. '1 A100')"]


def _gpu_count_rules(footprint: Footprint, usage: Usage, limits: PolicyLimits) -> list[tuple[Verdict, str]]:
    rules: list[tuple[Verdict, str]] = []
    asked = footprint.total_gpus
    per_job = limits.max_gpus_per_job
    if per_job is not None and asked > per_job:
        if asked <= per_job * APPROVAL_HEADROOM:
            rules.append(
                (
                    Verdict.NEEDS_APPROVAL,
                    f"{_gpus(asked)} asked, your limit is {per_job} per job: "
                    f"ask for {per_job} or request approval",
                )
            )
        else:
            rules.append(
                (
                    Verdict.DENY,
                    f"{_gpus(asked)} asked, your limit is {per_job} per job and at most "
                    f"{per_job * APPROVAL_HEADROOM} with an admin's approval: ask for {per_job} "
                    "(or split the work into several jobs)",
                )
            )
    per_user = limits.max_gpus_per_user
    held = usage.gpus_in_use
    if per_user is not None and asked > 0 and held + asked > per_user:
        holding = f"you already use {held} of your {per_user} GPUs" + (
            f" ({_jobs(usage.jobs_active)} running or pending)" if usage.jobs_active else ""
        )
        room = max(per_user - held, 0)
        fewer = f"ask for {room}, " if 0 < room < asked else ""
        if held + asked <= per_user * APPROVAL_HEADROOM:
            rules.append(
                (
                    Verdict.NEEDS_APPROVAL,
                    f"{holding}; this asks {asked} more: {fewer}wait for a job to end, or request approval",
                )
            )
        else:
            rules.append(
                (
                    Verdict.DENY,
                    f"{holding}; this asks {asked} more, beyond the {per_user * APPROVAL_HEADROOM} "
                    f"allowed even with approval: {fewer}wait for your jobs to end or cancel one",
                )
            )
    return rules


def _cluster_limit_reasons(usage: Usage) -> tuple[list[str], list[str]]:
    """(refusals, waits) from the cluster's own GPU limits."""
    never: list[str] = []
    waits: list[str] = []
    for limit in usage.cluster_limits:
        if limit.never_fits:
            never.append(
                f"the cluster would never start it: {limit.words} and this asks for {limit.asked}; "
                f"ask for {limit.limit} or fewer"
            )
        elif not limit.fits_now and limit.in_use is not None:
            room = limit.room
            fewer = f"ask for {room} to start sooner, or " if 0 < room < limit.asked else ""
            waits.append(
                f"the cluster will hold it until GPUs are released: {limit.words} and "
                f"{limit.in_use} {'is' if limit.in_use == 1 else 'are'} in use now{limit.held_by}; "
                f"{fewer}it starts when one of those jobs ends"
            )
    return never, waits


def _gpu_hour_rules(footprint: Footprint, limits: PolicyLimits) -> list[tuple[Verdict, str]]:
    threshold = limits.approval_gpu_hours
    total = footprint.total_gpus
    if threshold is None or total == 0:
        return []
    minutes = footprint.judged_minutes(limits.max_time_minutes)
    if minutes is None:
        return [
            (
                Verdict.NEEDS_APPROVAL,
                f"a service runs until it is cancelled, so its {_gpus(total)} have no GPU-hour "
                f"bound; above {threshold:g} GPU-hours an admin must approve: give it a time limit",
            )
        ]
    gpu_hours = total * minutes / 60
    if gpu_hours <= threshold:
        return []
    asked = f"{_gpus(total)} for {duration(minutes=minutes)}"
    if footprint.time_limit_minutes is None:
        asked += ", as a service with no time limit counts"
    return [
        (
            Verdict.NEEDS_APPROVAL,
            f"this asks {gpu_hours:g} GPU-hours ({asked}); "
            f"above {threshold:g} GPU-hours an admin must approve: ask for fewer GPUs or less time "
            "to run without approval",
        )
    ]


def _gpus(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "none"
