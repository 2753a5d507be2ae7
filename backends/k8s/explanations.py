"""One workload's situation as `PendingReason`s: the sentence, the scheduler's words, the alternatives.

Pure: the backend fetches the workload with its pods, the events of its namespace, and (only
when a pod is unschedulable) one capacity snapshot, then calls `explain_workload`.

Each waiting pod yields its reasons: container problems first (the pod is placed but cannot run:
image pull, crash loop, configuration), else the scheduler's message, parsed (pending.py) into one
reason per kind of refusal, with how many nodes said it. Replicas waiting for the same reason are
told once ("2 of its 3 pods wait"). Alternatives come from capacity (alternatives.py) and go with
the GPU reason, or with the taint/affinity reason when no node lacked GPUs. Kubernetes has no start
estimate (no backfill plan), so none is invented; the sentences say what has to change instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from backends.durations_text import duration, plural
from backends.k8s.alternatives import (
    describe_node_count,
    fits_now,
    gpu_alternatives,
    named_nodes,
    usable_nodes,
)
from backends.k8s.asks import PodAsk, ask_of, untolerated_taints
from backends.k8s.capacity import ClusterCapacity
from backends.k8s.objects import Event, Pod
from backends.k8s.pending import (
    NODE_STATE_TAINTS,
    ContainerProblem,
    NodeVerdict,
    SchedulingFailure,
    container_problems,
    parse_unschedulable,
    unschedulable_message,
)
from backends.k8s.placement import MEMORY_SHARE
from backends.k8s.workloads import DEPLOYMENT, Workload, workload_state
from backends.types import JobState, PendingCode, PendingReason

_SCHEDULER_ORDER = {
    PendingCode.UNBOUND_VOLUME: 0,
    PendingCode.INSUFFICIENT_GPU: 1,
    PendingCode.UNTOLERATED_TAINT: 2,
    PendingCode.NODE_AFFINITY: 3,
    PendingCode.NODES_UNAVAILABLE: 4,
    PendingCode.OTHER: 5,
}
_EPOCH = datetime.min.replace(tzinfo=UTC)
_NO_ESTIMATE = "It starts when running pods release enough of them; Kubernetes gives no start estimate."


@dataclass(frozen=True)
class _Waiting:
    """Why one pod waits: container problems, or the scheduler's refusal, or neither yet."""

    pod: Pod
    problems: tuple[ContainerProblem, ...] = ()
    failure: SchedulingFailure | None = None


def _events_of(events: Sequence[Event], kind: str, name: str) -> list[Event]:
    found = [e for e in events if e.involved_object.kind == kind and e.involved_object.name == name]
    return sorted(found, key=lambda e: e.last_seen or _EPOCH)


def _latest(events: Sequence[Event], reason: str) -> Event | None:
    matching = [e for e in events if e.reason == reason]
    return matching[-1] if matching else None


def _waiting_of(pod: Pod, events: Sequence[Event]) -> _Waiting:
    problems = tuple(container_problems(pod))
    if problems:
        return _Waiting(pod, problems)
    message = unschedulable_message(pod)
    if message is None and not pod.spec.node_name:
        scheduling = _latest(_events_of(events, "Pod", pod.metadata.name), "FailedScheduling")
        message = scheduling.message if scheduling else None
    return _Waiting(pod, failure=parse_unschedulable(message) if message else None)


def _subject(workload: Workload, waiting: int) -> str:
    total = max(workload.desired, len(workload.live_pods), waiting)
    if total <= 1:
        return f"{workload.title} waits:"
    return f"{waiting} of the {total} pods of {workload.title} {plural(waiting, 'waits', 'wait')}:"


def _nodes_phrase(verdict: NodeVerdict, failure: SchedulingFailure) -> tuple[str, str]:
    """("3 of 5 nodes", "have") for a histogram entry."""
    phrase = describe_node_count(verdict.nodes, failure.total_nodes)
    many = verdict.nodes is None or verdict.nodes != 1
    return phrase, "have" if many else "has"


def _ask_words(ask: PodAsk) -> str:
    if ask.resource is None:
        return "the CPUs and memory it asks for"
    floor = ask.memory_floor_mib
    memory = f" with at least {round(floor / 1024 / MEMORY_SHARE)} GB each" if floor else ""
    return f"{ask.describe()}{memory} ({ask.resource})"


def _capacity_note(ask: PodAsk, capacity: ClusterCapacity | None) -> str:
    if capacity is None or ask.resource is None:
        return ""
    resource = ask.resource
    room = fits_now(ask, capacity)
    if room:
        return f" Node {room[0].name} has room for it now: the scheduler places it at its next attempt."
    usable = usable_nodes(ask, capacity)
    note = ""
    if usable:
        most = max(usable, key=lambda n: (n.free(resource), n.name))
        note = f" The most free on one node it may use is {most.free(resource)} ({most.name})."
    down = [n for n in capacity.unavailable() if ask.labels_fit(n.labels) and n.allocatable.get(resource)]
    if down:
        states = ", ".join(f"{n.name} is {n.unavailable}" for n in down[:3])
        note += f" Not counted: {states}."
    return note


def _preemption_note(failure: SchedulingFailure) -> str:
    if failure.preemption and not failure.preemption_would_help:
        return " Preempting lower-priority pods would not make room."
    return ""


def _taint_detail(verdict: NodeVerdict, ask: PodAsk, capacity: ClusterCapacity | None) -> str:
    if verdict.taint_key:
        value = f"={verdict.taint_value}" if verdict.taint_value else ""
        return f"the taint {verdict.taint_key}{value}"
    if capacity is None:
        return "taints"
    by_taint: dict[str, list[str]] = {}
    for node in capacity.nodes:
        for taint in untolerated_taints(ask.tolerations, node.taints):
            if taint.key not in NODE_STATE_TAINTS:
                by_taint.setdefault(str(taint), []).append(node.name)
    if not by_taint:
        return "taints"
    listed = "; ".join(f"{taint} on {named_nodes(nodes)}" for taint, nodes in sorted(by_taint.items()))
    return f"taints ({listed})"


def _tainted_gpus(ask: PodAsk, capacity: ClusterCapacity | None) -> str | None:
    """An alternative: GPUs free on nodes that only a taint keeps the pod off."""
    if capacity is None or ask.resource is None:
        return None
    blocked = [
        n
        for n in capacity.gpu_nodes
        if n.unavailable is None
        and ask.labels_fit(n.labels)
        and ask.blocking_taints(n)
        and n.free(ask.resource) >= ask.count
    ]
    if not blocked:
        return None
    taints = sorted({str(t) for n in blocked for t in ask.blocking_taints(n)})
    where = named_nodes([n.name for n in blocked])
    return (
        f"{ask.describe()} {'is' if ask.count == 1 else 'are'} free on {where}, reserved by "
        f"{', '.join(taints)}: ask the cluster's admins whether your pods may tolerate it"
    )


def _claims(pod: Pod) -> str:
    claims = [v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim]
    return ", ".join(claims) or "(none named)"


def _scheduler_reason(
    workload: Workload,
    subject: str,
    verdict: NodeVerdict,
    verdicts: Sequence[NodeVerdict],
    failure: SchedulingFailure,
    pod: Pod,
    capacity: ClusterCapacity | None,
) -> PendingReason:
    ask = ask_of(pod.spec)
    nodes, have = _nodes_phrase(verdict, failure)
    code = verdict.code
    alternatives: tuple[str, ...] = ()
    if code is PendingCode.INSUFFICIENT_GPU:
        sentence = (
            f"{subject} no node has {_ask_words(ask)} free for it ({nodes} {have} too few free "
            f"{verdict.resource}). {_NO_ESTIMATE}{_capacity_note(ask, capacity)}{_preemption_note(failure)}"
        )
        if capacity is not None:
            alternatives = gpu_alternatives(ask, capacity)
    elif code is PendingCode.UNTOLERATED_TAINT:
        sentence = (
            f"{subject} {nodes} {have} {_taint_detail(verdict, ask, capacity)}, which the pod does not "
            "tolerate: those nodes are reserved for other work. It starts when a node it may use has "
            "room, or when it is allowed on the reserved nodes."
        )
        tainted = _tainted_gpus(ask, capacity)
        alternatives = (tainted,) if tainted else ()
    elif code is PendingCode.NODE_AFFINITY:
        sentence = (
            f"{subject} {nodes} {'do' if have == 'have' else 'does'} not match its node affinity/"
            f"selector: {'they are' if have == 'have' else 'it is'} not the kind of node it asks for "
            f"({_ask_words(ask)})."
        )
    elif code is PendingCode.NODES_UNAVAILABLE:
        if verdict.taint_key:
            state = NODE_STATE_TAINTS.get(verdict.taint_key, "unavailable")
            sentence = f"{subject} {nodes} {'are' if have == 'have' else 'is'} {state} ({verdict.taint_key})."
        else:
            sentence = f"{subject} {nodes} {'are' if have == 'have' else 'is'} cordoned (unschedulable)."
        their = "Their GPUs come back when they are" if have == "have" else "Its GPUs come back when it is"
        sentence += f" {their} Ready and uncordoned."
    elif code is PendingCode.UNBOUND_VOLUME:
        sentence = (
            f"{subject} its PersistentVolumeClaim {_claims(pod)} is not bound to a volume, so no node "
            f"can take it ({verdict.text}). Check the claim with `kubectl describe pvc -n "
            f"{workload.namespace}`: its StorageClass must provision a volume, or an admin must create one."
        )
    else:
        sentence = f"{subject} {nodes}: {verdict.text}."
    gpu_verdict = any(v.code is PendingCode.INSUFFICIENT_GPU for v in verdicts)
    if code in (PendingCode.UNTOLERATED_TAINT, PendingCode.NODE_AFFINITY) and capacity and not gpu_verdict:
        alternatives = (*alternatives, *gpu_alternatives(ask, capacity))
    return PendingReason(code=code, raw=failure.raw, sentence=sentence, alternatives=alternatives[:5])


def _problem_reason(
    workload: Workload, subject: str, problem: ContainerProblem, events: Sequence[Event]
) -> PendingReason:
    pod_events = _events_of(events, "Pod", problem.pod)
    raw = f"{problem.reason}: {problem.message}" if problem.message else problem.reason
    if problem.code is PendingCode.IMAGE_PULL:
        failed = _latest(pod_events, "Failed")
        detail = failed.message if failed else problem.message
        said = f": {detail}" if detail else ""
        sentence = (
            f"{subject} its image {problem.image or '(unnamed)'} cannot be pulled ({problem.reason}){said}. "
            "Check the image name and tag, that the registry is reachable from the cluster, and, for a "
            f"private registry, that namespace {workload.namespace} has a pull secret."
        )
    elif problem.code is PendingCode.CRASH_LOOP:
        exit_text = ""
        if problem.last_exit_code is not None:
            why = f" ({problem.last_exit_reason})" if problem.last_exit_reason else ""
            exit_text = f", last exit code {problem.last_exit_code}{why}"
        sentence = (
            f"{subject} its container {problem.container} keeps crashing (restarted {problem.restarts} "
            f"{plural(problem.restarts, 'time', 'times')}{exit_text}); Kubernetes waits longer between "
            f"restarts each time. See why with `kubectl logs -n {workload.namespace} {problem.pod} -c "
            f"{problem.container} --previous`, fix the command or image, and submit again."
        )
    else:
        said = f": {problem.message}" if problem.message else ""
        sentence = (
            f"{subject} its container {problem.container} cannot start ({problem.reason}){said}. "
            f"Create what it refers to in namespace {workload.namespace} (a Secret or ConfigMap), or ask "
            "an admin to fix the site's settings."
        )
    return PendingReason(code=problem.code, raw=raw, sentence=sentence)


def _creation_reasons(workload: Workload, events: Sequence[Event]) -> list[PendingReason]:
    """Why no pod exists: the controller's FailedCreate (a quota, an admission policy…)."""
    owners = [
        e
        for e in events
        if e.reason == "FailedCreate"
        and (
            (e.involved_object.kind == "Job" and e.involved_object.name == workload.name)
            or (
                e.involved_object.kind == "ReplicaSet"
                and e.involved_object.name.startswith(workload.name + "-")
            )
        )
    ]
    messages = [e.message for e in owners]
    if workload.deployment is not None:
        messages += [
            c.message
            for c in workload.deployment.status.conditions
            if c.type == "ReplicaFailure" and c.status == "True" and c.message
        ]
    reasons = []
    for message in dict.fromkeys(messages):
        if "exceeded quota" in message:
            reasons.append(
                PendingReason(
                    code=PendingCode.ACCOUNT_GPU_LIMIT,
                    raw=message,
                    sentence=(
                        f"{workload.title} waits: Kubernetes cannot create its pods because namespace "
                        f"{workload.namespace} has used up its ResourceQuota ({message}). It starts when "
                        "other pods in the namespace end; ask for fewer GPUs, or ask the namespace's "
                        "admins for a larger quota."
                    ),
                )
            )
        else:
            reasons.append(
                PendingReason(
                    code=PendingCode.OTHER,
                    raw=message,
                    sentence=f"{workload.title} waits: Kubernetes cannot create its pods: {message}.",
                )
            )
    return reasons


def _not_pending(workload: Workload, state: JobState, raw: str, reason: str | None) -> PendingReason:
    title = workload.title
    nodes = sorted({p.spec.node_name for p in workload.live_pods if p.spec.node_name})
    where = f" on {plural(len(nodes), 'node', 'nodes')} {named_nodes(nodes)}" if nodes else ""
    if state is JobState.RUNNING and workload.kind == DEPLOYMENT:
        sentence = f"{title} is not pending: {workload.ready}/{workload.desired} replicas are ready{where}."
    elif state is JobState.RUNNING:
        sentence = f"{title} is not pending: it is running{where}."
    elif state is JobState.COMPLETED:
        sentence = f"{title} is not pending: it has completed."
    elif state is JobState.TIMEOUT:
        limit = workload.job.spec.active_deadline_seconds if workload.job else None
        within = f" of {duration(seconds=limit)}" if limit else ""
        sentence = f"{title} is not pending: it ran past its time limit{within} and Kubernetes stopped it."
    elif state is JobState.FAILED:
        condition = workload.job_condition()
        why = f" ({condition.reason}: {condition.message})" if condition and condition.message else ""
        sentence = f"{title} is not pending: it has failed{why}."
    elif state is JobState.SUSPENDED and workload.kind == DEPLOYMENT:
        sentence = (
            f"{title} is not pending: it is scaled to 0 replicas; `concierge scale {workload.job_id} 1` "
            "starts it again."
        )
    elif state is JobState.SUSPENDED:
        sentence = f"{title} is not pending: it is suspended (spec.suspend); it starts when resumed."
    else:
        sentence = f"{title} is not pending: it is being deleted."
    return PendingReason(code=PendingCode.NOT_PENDING, raw=reason or raw, sentence=sentence)


def _grouped(waiting: Sequence[_Waiting]) -> list[tuple[_Waiting, int]]:
    """Pods that wait for the same reason, told once with how many they are."""
    groups: dict[tuple[str, ...], tuple[_Waiting, int]] = {}
    for item in waiting:
        if item.problems:
            key = tuple(f"{p.container}:{p.reason}" for p in item.problems)
        elif item.failure:
            key = tuple(f"{v.code}:{v.text}" for v in item.failure.verdicts)
        else:
            key = ("scheduled" if item.pod.spec.node_name else "unscheduled",)
        first, count = groups.get(key, (item, 0))
        groups[key] = (first, count + 1)
    return list(groups.values())


def explain_workload(
    workload: Workload, events: Sequence[Event], capacity: ClusterCapacity | None
) -> list[PendingReason]:
    state, raw, reason = workload_state(workload)
    waiting_pods = [p for p in workload.live_pods if not p.is_ready]
    fully_up = state is JobState.RUNNING and (
        workload.kind != DEPLOYMENT or workload.ready >= workload.desired
    )
    if state is not JobState.PENDING and (fully_up or state is not JobState.RUNNING or not waiting_pods):
        return [_not_pending(workload, state, raw, reason)]
    if not waiting_pods:
        created = _creation_reasons(workload, events)
        if created:
            return created
        return [
            PendingReason(
                code=PendingCode.NOT_YET_CONSIDERED,
                raw=raw,
                sentence=(
                    f"{workload.title} waits: Kubernetes has not created its pods yet; ask again in a moment."
                ),
            )
        ]
    reasons: list[PendingReason] = []
    for item, count in _grouped([_waiting_of(p, events) for p in waiting_pods]):
        subject = _subject(workload, count)
        if item.problems:
            reasons += [_problem_reason(workload, subject, p, events) for p in item.problems]
        elif item.failure is not None:
            verdicts = sorted(item.failure.verdicts, key=lambda v: _SCHEDULER_ORDER.get(v.code, 9))
            # Nodes outside the pod's affinity are the other GPU kinds it did not ask for: worth a
            # sentence only when nothing else holds the pod back.
            if len(verdicts) > 1:
                verdicts = [v for v in verdicts if v.code is not PendingCode.NODE_AFFINITY] or verdicts
            reasons += [
                _scheduler_reason(workload, subject, v, verdicts, item.failure, item.pod, capacity)
                for v in verdicts
            ]
        elif item.pod.spec.node_name:
            mounts = _latest(_events_of(events, "Pod", item.pod.metadata.name), "FailedMount")
            trouble = f" It reports: {mounts.message}" if mounts else ""
            reasons.append(
                PendingReason(
                    code=PendingCode.OTHER,
                    raw=item.pod.status.phase or "Pending",
                    sentence=(
                        f"{subject} its pod is on node {item.pod.spec.node_name} and its containers are "
                        f"being created (pulling the image, mounting volumes).{trouble}"
                    ),
                )
            )
        else:
            reasons.append(
                PendingReason(
                    code=PendingCode.NOT_YET_CONSIDERED,
                    raw="Pending",
                    sentence=f"{subject} the scheduler has not looked at its pod yet; ask again in a moment.",
                )
            )
    return reasons
