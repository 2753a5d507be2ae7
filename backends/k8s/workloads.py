"""Our workloads (Deployments and Jobs) with their pods, and what state each is in.

Built from three labelled LISTs across namespaces (Deployments, Jobs, Pods with
`app.kubernetes.io/managed-by=gpu-concierge`), whatever the number of workloads: the tracker's
cost per poll does not grow with the jobs it follows. Pods join their workload by namespace,
`app.kubernetes.io/name` and `gpu-concierge/workload` (a Deployment and a Job may share a name).

States:
- Deployment: running when every desired replica is ready (or some are: a service that answers is
  up, and `why` explains the rest); pending when none is; suspended when scaled to 0.
- Job: completed / failed from its conditions (`DeadlineExceeded` is a timeout); running while a
  pod runs; suspended when `spec.suspend`; otherwise pending.
- Anything being deleted is completing. The reason is the pod's most telling word:
  ImagePullBackOff, CrashLoopBackOff…, else Unschedulable, else ContainerCreating.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from backends.k8s.capacity import pod_gpu_requests
from backends.k8s.manifests import (
    GPU_TYPE_ANNOTATION,
    K8S_USER_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    REQUEST_LABEL,
    REQUESTER_ANNOTATION,
    WORKLOAD_LABEL,
)
from backends.k8s.naming import is_name, is_namespace
from backends.k8s.objects import Condition, Deployment, Job, ObjectMeta, Pod, PodSpec
from backends.k8s.pending import container_problems, unschedulable_message
from backends.types import GpuAsk, JobEnding, JobRef, JobState, JobStatus

DEPLOYMENT = "Deployment"
JOB = "Job"
_KIND_WORKLOAD = {DEPLOYMENT: "service", JOB: "batch"}


@dataclass(frozen=True)
class Workload:
    kind: str
    metadata: ObjectMeta
    pod_spec: PodSpec
    desired: int
    pods: tuple[Pod, ...]
    deployment: Deployment | None = None
    job: Job | None = None

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def job_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def title(self) -> str:
        return f"{self.kind} {self.job_id}"

    @property
    def requester(self) -> str | None:
        return self.metadata.annotations.get(REQUESTER_ANNOTATION)

    @property
    def k8s_user(self) -> str | None:
        return self.metadata.annotations.get(K8S_USER_ANNOTATION)

    @property
    def ready(self) -> int:
        if self.deployment is not None:
            return self.deployment.status.ready_replicas
        return sum(1 for pod in self.live_pods if pod.is_ready)

    @property
    def live_pods(self) -> list[Pod]:
        """Pods that count now: not terminated, not being deleted."""
        return [p for p in self.pods if not p.is_terminated and p.metadata.deletion_timestamp is None]

    def job_condition(self) -> Condition | None:
        """The Job's final condition (Complete / Failed and their 1.31+ forerunners), if any."""
        if self.job is None:
            return None
        for condition in self.job.status.conditions:
            if condition.status == "True" and condition.type in (
                "Complete",
                "Failed",
                "SuccessCriteriaMet",
                "FailureTarget",
            ):
                return condition
        return None


def _key(namespace: str, name: str, workload: str) -> tuple[str, str, str]:
    return (namespace, name, workload)


W = TypeVar("W", Deployment, Job)


def _ours(objects: Iterable[W]) -> list[W]:
    """Only what carries our label, even from a server that ignored the label selector."""
    return [o for o in objects if o.metadata.labels.get(MANAGED_BY_LABEL) == MANAGED_BY]


def collect_workloads(
    deployments: Iterable[Deployment], jobs: Iterable[Job], pods: Iterable[Pod]
) -> list[Workload]:
    pods_of: dict[tuple[str, str, str], list[Pod]] = defaultdict(list)
    for pod in pods:
        labels = pod.metadata.labels
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            continue
        name = labels.get(NAME_LABEL)
        if name:
            pods_of[_key(pod.metadata.namespace, name, labels.get(WORKLOAD_LABEL, ""))].append(pod)
    found: list[Workload] = []
    for deployment in _ours(deployments):
        meta = deployment.metadata
        found.append(
            Workload(
                kind=DEPLOYMENT,
                metadata=meta,
                pod_spec=deployment.spec.template.spec,
                desired=1 if deployment.spec.replicas is None else deployment.spec.replicas,
                pods=tuple(pods_of.get(_key(meta.namespace, meta.name, "service"), ())),
                deployment=deployment,
            )
        )
    for job in _ours(jobs):
        meta = job.metadata
        found.append(
            Workload(
                kind=JOB,
                metadata=meta,
                pod_spec=job.spec.template.spec,
                desired=job.spec.parallelism if job.spec.parallelism is not None else 1,
                pods=tuple(pods_of.get(_key(meta.namespace, meta.name, "batch"), ())),
                job=job,
            )
        )
    return found


def pod_reason(pod: Pod) -> str | None:
    """The pod's most telling word for why it is not running (None when it runs)."""
    problems = container_problems(pod)
    if problems:
        return problems[0].reason
    if unschedulable_message(pod) is not None:
        return "Unschedulable"
    if pod.status.phase == "Pending":
        for status in (*pod.status.init_container_statuses, *pod.status.container_statuses):
            if status.state.waiting and status.state.waiting.reason:
                return status.state.waiting.reason
        return "ContainerCreating" if pod.spec.node_name else "Pending"
    return None


def _waiting_reason(workload: Workload) -> str | None:
    reasons = [r for r in (pod_reason(p) for p in workload.live_pods if not p.is_ready) if r]
    return reasons[0] if reasons else None


def _deployment_state(workload: Workload) -> tuple[JobState, str, str | None]:
    ready, desired = workload.ready, workload.desired
    raw = f"{ready}/{desired} ready"
    if desired == 0:
        return JobState.SUSPENDED, "scaled to 0", None
    waiting = _waiting_reason(workload)
    if waiting is None and workload.deployment is not None:
        for condition in workload.deployment.status.conditions:
            if condition.type == "ReplicaFailure" and condition.status == "True":
                waiting = condition.reason or "ReplicaFailure"
    if ready >= desired:
        return JobState.RUNNING, raw, None
    if ready > 0:
        return JobState.RUNNING, raw, waiting
    return JobState.PENDING, raw, waiting or "Pending"


def _job_state(workload: Workload) -> tuple[JobState, str, str | None]:
    assert workload.job is not None
    final = workload.job_condition()
    if final is not None:
        if final.type in ("Complete", "SuccessCriteriaMet"):
            return JobState.COMPLETED, "Complete", final.reason or None
        if final.reason == "DeadlineExceeded":
            return JobState.TIMEOUT, "Failed", final.reason
        return JobState.FAILED, "Failed", final.reason or None
    if workload.job.spec.suspend:
        return JobState.SUSPENDED, "Suspended", None
    if any(p.status.phase == "Running" for p in workload.live_pods):
        return JobState.RUNNING, "Running", _waiting_reason(workload) if workload.desired > 1 else None
    return JobState.PENDING, "Pending", _waiting_reason(workload) or "Pending"


def workload_state(workload: Workload) -> tuple[JobState, str, str | None]:
    """(state, the cluster's own word, the reason) for one workload."""
    if workload.metadata.deletion_timestamp is not None:
        return JobState.COMPLETING, "Terminating", "being deleted"
    if workload.kind == DEPLOYMENT:
        return _deployment_state(workload)
    return _job_state(workload)


def _started_at(workload: Workload) -> datetime | None:
    starts = [
        status.state.running.started_at
        for pod in workload.pods
        for status in pod.status.container_statuses
        if status.state.running and status.state.running.started_at
    ]
    if starts:
        return min(starts)
    if workload.job is not None and workload.job_condition() is not None:
        return workload.job.status.start_time
    return None


def _gpus(workload: Workload) -> tuple[GpuAsk, ...]:
    asked = pod_gpu_requests(workload.pod_spec.containers, workload.pod_spec.init_containers)
    if not asked:
        return ()
    gpu_type = workload.metadata.annotations.get(GPU_TYPE_ANNOTATION)
    return (GpuAsk(count=sum(asked.values()), gpu_type=gpu_type),)


def _ending(workload: Workload, state: JobState, reason: str | None) -> JobEnding | None:
    """How an ended Job ended: its failed (else last) container's terminated state, whose message holds
    the log's last lines (the manifests ask for FallbackToLogsOnError); the Job's reason without one."""
    if workload.job is None or not state.is_final:
        return None
    ended = [
        status.state.terminated
        for pod in workload.pods
        for status in pod.status.container_statuses
        if status.state.terminated is not None
    ]
    if not ended:
        return JobEnding(reason=reason)
    last = max(ended, key=lambda t: (t.exit_code != 0, t.finished_at or datetime.min.replace(tzinfo=UTC)))
    # The container's own reason when it says more than "Error" (OOMKilled); else the Job's
    # (DeadlineExceeded, BackoffLimitExceeded), which says why its containers were stopped.
    said = last.reason if last.reason not in ("", "Error", "Completed") else reason
    return JobEnding(exit_code=last.exit_code, reason=said, message=last.message.rstrip("\n") or None)


def workload_status(workload: Workload, now: datetime) -> JobStatus:
    state, raw, reason = workload_state(workload)
    started = _started_at(workload)
    end = None
    if workload.job is not None and state.is_final:
        end = workload.job.status.completion_time or (
            c.last_transition_time if (c := workload.job_condition()) else None
        )
    elapsed = None
    if started is not None and (state is JobState.RUNNING or end is not None):
        elapsed = max(int(((end or now) - started).total_seconds()), 0)
    deadline = workload.job.spec.active_deadline_seconds if workload.job else None
    return JobStatus(
        ref=JobRef(backend="k8s", job_id=workload.job_id),
        name=workload.name,
        user=workload.k8s_user or workload.requester or "",
        state=state,
        raw_state=raw,
        reason=reason,
        partition=workload.namespace,
        gpus=_gpus(workload),
        nodes=workload.desired,
        submitted_at=workload.metadata.creation_timestamp,
        started_at=started,
        elapsed_seconds=elapsed,
        time_limit_minutes=deadline // 60 if deadline else None,
        request_id=workload.metadata.labels.get(REQUEST_LABEL),
        ending=_ending(workload, state, reason),
    )


_KIND_WORDS = {
    "deployment": DEPLOYMENT,
    "deployments": DEPLOYMENT,
    "deploy": DEPLOYMENT,
    "service": DEPLOYMENT,
    "job": JOB,
    "jobs": JOB,
}


@dataclass(frozen=True)
class Reference:
    """What a person's job id names: `ns/name`, `ns/kind/name`, `kind/name` or a bare `name`."""

    name: str
    namespace: str | None = None
    kind: str | None = None  # DEPLOYMENT or JOB

    @property
    def usable(self) -> bool:
        """Whether every part can be a Kubernetes name (anything else names nothing of ours)."""
        return is_name(self.name) and (self.namespace is None or is_namespace(self.namespace))


def parse_reference(job_id: str) -> Reference | None:
    parts = [part for part in job_id.strip().split("/") if part]
    if len(parts) == 3 and parts[1].lower() in _KIND_WORDS:
        return Reference(parts[2], parts[0], _KIND_WORDS[parts[1].lower()])
    if len(parts) == 2 and parts[0].lower() in _KIND_WORDS:
        return Reference(parts[1], None, _KIND_WORDS[parts[0].lower()])
    if len(parts) == 2:
        return Reference(parts[1], parts[0])
    if len(parts) == 1:
        return Reference(parts[0])
    return None


def find_workloads(workloads: Sequence[Workload], job_id: str) -> list[Workload]:
    """Our workloads a person's reference names (see `Reference`)."""
    wanted = parse_reference(job_id)
    if wanted is None:
        return []
    return [
        w
        for w in workloads
        if w.name == wanted.name
        and (wanted.namespace is None or w.namespace == wanted.namespace)
        and (wanted.kind is None or w.kind == wanted.kind)
    ]
