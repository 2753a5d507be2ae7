"""The Kubernetes backend: the Backend protocol over the Kubernetes API, writing as the person.

Who does what: creates, dry runs, deletes and scaling go out as the person (impersonation,
connection.py), so the cluster's RBAC decides and its audit log names them; reads go out as the
bot, because one cluster-wide LIST serves everybody (see connection.py for the bot's RBAC).

Cost per operation (API requests):
  plan 0–1 (one nodes LIST, cached `facts_ttl_s`) · validate 1 dry run per manifest (+2 for the
  "would it start now" check) · submit 1 per manifest (a failure part-way: +1 delete per object
  created, submission.py; no answer: +1 GET) · statuses 3 for any number of workloads
  (Deployments, Jobs and Pods, each ONE labelled LIST across namespaces) · queue 3 · capacity 2
  (nodes, non-terminated pods) · explain 3 (+1 events of the namespace when something waits,
  +2 capacity when a pod is unschedulable) · cancel 4–5 · scale 3.

Job ids are `<namespace>/<name>`. A person may also say `<name>` alone, `<namespace>/<kind>/<name>`
or `<kind>/<name>`; such references are looked up among our workloads (by label) and must name
exactly one. Workloads the cluster no longer has are left out of `statuses`; the tracker records
them as vanished (a finished Job stays `ttl_seconds_after_finished`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from backends.bulk import collector_paused
from backends.durations_text import duration
from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConciergeError,
    JobNotFound,
    PermissionDenied,
    RequestInvalid,
)
from backends.k8s.alternatives import fits_now, gpu_alternatives
from backends.k8s.asks import ask_of
from backends.k8s.capacity import ClusterCapacity, capacity_from, node_gpus, pools_of
from backends.k8s.cluster import KubeApi
from backends.k8s.connection import ApiClientFactory, ApiClients, factory_from_settings, person_of
from backends.k8s.explanations import explain_workload
from backends.k8s.facts import ClusterFacts, facts_from_configuration, facts_from_nodes
from backends.k8s.manifests import (
    CONTAINER_ENVIRONMENT,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    OUR_SELECTOR,
    UNRESOLVED_ANNOTATION,
    build_manifests,
)
from backends.k8s.objects import (
    Deployment,
    Event,
    Job,
    Node,
    Pod,
    PodSpec,
    Service,
    decode_object,
)
from backends.k8s.settings import K8sSettings
from backends.k8s.submission import create_all
from backends.k8s.workloads import (
    DEPLOYMENT,
    Workload,
    collect_workloads,
    find_workloads,
    parse_reference,
    workload_status,
)
from backends.types import (
    QUEUE_ORDER,
    Footprint,
    GpuPool,
    Identity,
    JobRef,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)

RUNNING_PODS = "status.phase!=Succeeded,status.phase!=Failed"


class KubernetesBackend:
    name: Target = "k8s"

    def __init__(
        self,
        settings: K8sSettings,
        *,
        api_client_factory: ApiClientFactory | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._clients = ApiClients(
            api_client_factory or factory_from_settings(settings), settings.client_cache_size
        )
        self.api = KubeApi(self._clients, settings.request_timeout_s)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._facts: tuple[datetime, ClusterFacts] | None = None

    def close(self) -> None:
        self._clients.close()

    # -- what the cluster offers ---------------------------------------------------------------

    def cluster_facts(self) -> ClusterFacts:
        """What the GPU nodes advertise (one nodes LIST, reused for `facts_ttl_s`)."""
        now = self._clock()
        if self._facts is not None and (now - self._facts[0]).total_seconds() < self._settings.facts_ttl_s:
            return self._facts[1]
        try:
            nodes = self.api.list_of(Node)
        except ConciergeError as e:
            return facts_from_configuration(self._settings.fallback_gpu_products, e.message)
        facts = facts_from_nodes(node_gpus(node) for node in nodes)
        self._facts = (now, facts)
        return facts

    def _capacity_snapshot(self) -> ClusterCapacity:
        return capacity_from(self.api.list_of(Node), self.api.list_of(Pod, field_selector=RUNNING_PODS))

    def capacity(self) -> list[GpuPool]:
        with collector_paused():
            return pools_of(self._capacity_snapshot())

    # -- submitting ----------------------------------------------------------------------------

    def plan(self, footprint: Footprint, identity: Identity, request_id: str) -> Plan:
        person_of(identity)  # fail now, before the person confirms, if we could not act as them
        planned = build_manifests(footprint, identity, request_id, self._settings, self.cluster_facts())
        return Plan(
            backend="k8s",
            request_id=request_id,
            footprint=footprint,
            identity=identity,
            manifests=planned.manifests,
            warnings=planned.warnings,
            environment=CONTAINER_ENVIRONMENT,
        )

    def _manifests_of(self, plan: Plan) -> tuple[dict[str, Any], ...]:
        if plan.backend != "k8s" or not plan.manifests:
            raise RequestInvalid(f"this plan is for {plan.backend}, not Kubernetes; it has no manifests")
        for manifest in plan.manifests:
            metadata = manifest.get("metadata") or {}
            if (metadata.get("labels") or {}).get(MANAGED_BY_LABEL) != MANAGED_BY:
                raise RequestInvalid(
                    "GPU Concierge only submits manifests it made (labelled managed-by gpu-concierge)"
                )
            unresolved = (metadata.get("annotations") or {}).get(UNRESOLVED_ANNOTATION)
            if unresolved:  # unavailable, not invalid: the request is fine, the cluster did not answer
                raise BackendUnavailable(
                    f"this plan was made while the cluster could not be read, so the GPU type {unresolved} "
                    "was not matched to the cluster's GPUs; ask again when the cluster answers"
                )
        return plan.manifests

    def validate(self, plan: Plan) -> list[str]:
        warnings: list[str] = []
        for manifest in self._manifests_of(plan):
            warnings += self.api.create(manifest, plan.identity, dry_run=True)
        start = self._start_warning(plan)
        return warnings + ([start] if start else [])

    def _start_warning(self, plan: Plan) -> str | None:
        """Whether a node has room for the pod now (only GPUs weighed), as Slurm's --test-only says."""
        template = next(
            (m["spec"]["template"] for m in plan.manifests if m.get("kind") in ("Deployment", "Job")), None
        )
        if template is None:
            return None
        ask = ask_of(decode_object(template.get("spec") or {}, PodSpec))
        if ask.resource is None:
            return None
        try:
            capacity = self._capacity_snapshot()
        except ConciergeError:
            return None
        if fits_now(ask, capacity):
            return None
        options = gpu_alternatives(ask, capacity)
        hint = f"; {options[0]}" if options else ""
        return f"it would not start right away: no node it may use has {ask.describe()} free now{hint}"

    def submit(self, plan: Plan) -> JobRef:
        manifests = self._manifests_of(plan)
        create_all(self.api, manifests, plan.identity)  # all or nothing, else it says what was left
        workload = manifests[0]["metadata"]
        return JobRef(backend="k8s", job_id=f"{workload['namespace']}/{workload['name']}")

    # -- following ----------------------------------------------------------------------------

    def _workloads(self, *, namespace: str | None = None, name: str | None = None) -> list[Workload]:
        """Our workloads with their pods: three labelled LISTs (narrowed to a name when given)."""
        selector = OUR_SELECTOR + (f",{NAME_LABEL}={name}" if name else "")
        deployments = self.api.list_of(Deployment, namespace=namespace, label_selector=selector)
        jobs = self.api.list_of(Job, namespace=namespace, label_selector=selector)
        pods = self.api.list_of(Pod, namespace=namespace, label_selector=selector)
        return collect_workloads(deployments, jobs, pods)

    def statuses(self, refs: Sequence[JobRef]) -> list[JobStatus]:
        if not refs:
            return []
        with collector_paused():
            workloads = self._workloads()
            now = self._clock()
            by_id: dict[str, list[Workload]] = {}
            for workload in workloads:
                by_id.setdefault(workload.job_id, []).append(workload)
            found: list[JobStatus] = []
            seen: set[tuple[str, str]] = set()
            for ref in refs:  # canonical ids are looked up directly, other references searched
                for workload in by_id.get(ref.job_id) or find_workloads(workloads, ref.job_id):
                    if (workload.kind, workload.job_id) not in seen:
                        seen.add((workload.kind, workload.job_id))
                        found.append(workload_status(workload, now))
            return found

    def queue(self, filter: QueueFilter) -> list[JobStatus]:
        with collector_paused():
            return self._queue(filter)

    def _queue(self, filter: QueueFilter) -> list[JobStatus]:
        workloads = self._workloads()
        if filter.user is not None:
            workloads = [w for w in workloads if filter.user in (w.k8s_user, w.requester)]
        if filter.job_ids:
            wanted = {w.job_id for job_id in filter.job_ids for w in find_workloads(workloads, job_id)}
            workloads = [w for w in workloads if w.job_id in wanted]
        now = self._clock()
        rows = [workload_status(w, now) for w in workloads]
        if filter.states:
            rows = [row for row in rows if row.state in filter.states]
        rows.sort(
            key=lambda row: (
                QUEUE_ORDER.get(row.state, 9),
                -(row.submitted_at.timestamp() if row.submitted_at else 0),
                row.ref.job_id,
            )
        )
        return rows

    def _resolve(self, ref: JobRef) -> Workload:
        wanted = parse_reference(ref.job_id)
        matches: list[Workload] = []
        if wanted is not None and wanted.usable:
            found = self._workloads(namespace=wanted.namespace, name=wanted.name)
            matches = find_workloads(found, ref.job_id)
        if not matches:
            raise JobNotFound(
                f"no workload {ref.job_id} of GPU Concierge is on the cluster: it was deleted (a finished "
                f"Job is kept {self._kept()}), or the name is wrong; `concierge queue --backend k8s` "
                "lists them"
            )
        if len(matches) > 1:
            listed = ", ".join(f"{w.kind} {w.job_id}" for w in matches)
            raise RequestInvalid(
                f"{ref.job_id} names several workloads ({listed}); say which, as namespace/name or "
                "namespace/kind/name (e.g. research/job/train)"
            )
        return matches[0]

    def _kept(self) -> str:
        ttl = self._settings.ttl_seconds_after_finished
        return "until deleted" if ttl is None else f"{duration(seconds=ttl)} after it ends"

    def explain(self, ref: JobRef) -> list[PendingReason]:
        workload = self._resolve(ref)
        waiting = [p for p in workload.live_pods if not p.is_ready]
        events: list[Event] = []
        capacity: ClusterCapacity | None = None
        if waiting or not workload.live_pods:
            events = self.api.list_of(Event, namespace=workload.namespace)
        if any(not p.spec.node_name for p in waiting):
            try:
                capacity = self._capacity_snapshot()
            except ConciergeError:
                capacity = None  # the explanation still stands without alternatives
        return explain_workload(workload, events, capacity)

    # -- changing --------------------------------------------------------------------------------

    def _owned(self, workload: Workload, identity: Identity, verb: str) -> None:
        if identity.is_admin:
            return
        mine = identity.requester == workload.requester or (
            identity.k8s_user is not None and identity.k8s_user == workload.k8s_user
        )
        if not mine:
            owner = workload.k8s_user or workload.requester or "someone else"
            raise PermissionDenied(
                f"{workload.title} belongs to {owner}; only its owner or an admin can {verb} it"
            )

    def cancel(self, ref: JobRef, identity: Identity) -> None:
        workload = self._resolve(ref)
        state = workload_status(workload, self._clock()).state
        if state.is_final:
            raise BackendRejected(
                f"{workload.title} has already ended ({state.value}); there is nothing to cancel"
            )
        self._owned(workload, identity, "cancel")
        self.api.delete(workload.kind, workload.namespace, workload.name, identity)
        if workload.kind == DEPLOYMENT:
            selector = f"{OUR_SELECTOR},{NAME_LABEL}={workload.name}"
            for service in self.api.list_of(Service, namespace=workload.namespace, label_selector=selector):
                self.api.delete("Service", workload.namespace, service.metadata.name, identity)

    def scale(self, ref: JobRef, replicas: int, identity: Identity) -> None:
        if replicas < 0:
            raise RequestInvalid(f"a service cannot have {replicas} replicas; ask for 0 or more")
        workload = self._resolve(ref)
        if workload.kind != DEPLOYMENT:
            raise RequestInvalid(
                f"{workload.title} is a batch Job, which runs to its end; only services (Deployments) scale"
            )
        self._owned(workload, identity, "scale")
        self.api.scale(workload.namespace, workload.name, replicas, identity)
