"""The engine: one flow for every door (understand → judge → plan → confirm → submit → store).

The doors (CLI today, Slack and the scheduler later) only translate to and from these calls; the
engine knows no Slack and no terminal. Every call that starts from a person's words is recorded in
the store before anything can fail, and its outcome is written whatever happens, so nothing a person
asked is ever lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from backends.errors import (
    BackendUnavailable,
    ConciergeError,
    JobNotFound,
    PermissionDenied,
    PolicyDenied,
    RequestInvalid,
)
from backends.protocol import Backend, Scalable
from backends.types import (
    GpuPool,
    Identity,
    Intent,
    IntentKind,
    JobRef,
    JobRequest,
    JobStatus,
    PendingReason,
    Plan,
    QueueFilter,
    Target,
)
from bot.store import RequestRecord, Store
from policies import Decision, PolicySettings, Verdict, apply_defaults, judge

Understand = Callable[[str], Intent]
_SLURM_JOB_ID = re.compile(r"^\d+(_\d+)?$")


@dataclass(frozen=True)
class Prepared:
    """A submit request that has been understood, judged and planned, but not yet submitted."""

    request_id: str
    intent: Intent
    decision: Decision
    plan: Plan
    warnings: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return self.decision.verdict == Verdict.ALLOW


@dataclass(frozen=True)
class JobReport:
    """One job as the cluster sees it now, and as the store remembers it."""

    ref: JobRef
    status: JobStatus | None
    record: RequestRecord | None


class Concierge:
    def __init__(
        self,
        store: Store,
        backends: Mapping[Target, Backend],
        understand: Understand,
        policy: PolicySettings,
        default_backend: Target = "slurm",
    ) -> None:
        self._store = store
        self._backends = dict(backends)
        self._understand = understand
        self._policy = policy
        self._default_backend = default_backend

    @property
    def policy(self) -> PolicySettings:
        return self._policy

    def understand(self, text: str) -> Intent:
        return self._understand(text)

    # --- submit path -------------------------------------------------------------------------

    def prepare(
        self, identity: Identity, text: str, door: str, *, backend: Target | None = None, check: bool = True
    ) -> Prepared:
        """Understand, judge and plan a submit request; `check` also asks the cluster (sbatch --test-only)."""
        request_id = self._store.new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            return self._planned(request_id, identity, self._understood(request_id, text), backend, check)

    def prepare_request(
        self,
        identity: Identity,
        request: JobRequest,
        door: str,
        text: str,
        *,
        backend: Target | None = None,
        check: bool = True,
    ) -> Prepared:
        """`prepare` for a request already in fields (Slack's form): nothing to understand; `text`
        is a readable summary, stored as what was asked."""
        request_id = self._store.new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            intent = Intent(kind=IntentKind.SUBMIT, request=request)
            self._store.record_intent(request_id, intent)
            return self._planned(request_id, identity, intent, backend, check)

    def _planned(
        self, request_id: str, identity: Identity, intent: Intent, backend: Target | None, check: bool
    ) -> Prepared:
        request, decision = self._decided(request_id, identity, intent)
        chosen = self._backend(backend or request.target or self._policy.routing.target_for(request.workload))
        plan = chosen.plan(request, identity, request_id)
        warnings = list(plan.warnings)
        if check and decision.verdict != Verdict.DENY:
            warnings.extend(self._cluster_check(chosen, plan))
        self._store.record_plan(request_id, plan)
        return Prepared(request_id, intent, decision, plan, tuple(warnings))

    def check_policy(self, identity: Identity, text: str, door: str) -> Decision:
        """The policy's verdict on a request, without planning or asking the cluster."""
        request_id = self._store.new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            _, decision = self._decided(request_id, identity, self._understood(request_id, text))
        self._store.record_outcome(request_id, "policy_check")
        return decision

    def _understood(self, request_id: str, text: str) -> Intent:
        intent = self._understand(text)
        self._store.record_intent(request_id, intent)
        if intent.kind != IntentKind.SUBMIT:
            raise RequestInvalid(self._not_a_submit_message(intent))
        return intent

    def _decided(self, request_id: str, identity: Identity, intent: Intent) -> tuple[JobRequest, Decision]:
        """The site's defaults applied to the request, and the policy's verdict on it (recorded)."""
        request = apply_defaults(intent.request, self._policy, identity)
        usage = self._store.active_gpu_usage(identity.requester)
        decision = judge(request, identity, usage, self._policy)
        self._store.record_decision(request_id, decision)
        return request, decision

    def submit(self, prepared: Prepared) -> JobRef:
        decision = self._judged_again(prepared)
        if decision.verdict == Verdict.DENY:
            self._store.record_outcome(prepared.request_id, "denied", "; ".join(decision.reasons))
            raise PolicyDenied("not submitted: " + "; ".join(decision.reasons))
        if decision.verdict == Verdict.NEEDS_APPROVAL:
            self._store.record_outcome(prepared.request_id, "needs_approval", "; ".join(decision.reasons))
            raise PolicyDenied(
                "not submitted, this request needs an approver: "
                + "; ".join(decision.reasons)
                + ". Ask an admin, or make the request smaller."
            )
        return self._submit_planned(prepared)

    def _judged_again(self, prepared: Prepared) -> Decision:
        """The policy's verdict now. A preview may be clicked long after it was judged, and other
        jobs of the person may have started since: several allowed previews must not add up to more
        than the person's limit."""
        identity = prepared.plan.identity
        usage = self._store.active_gpu_usage(identity.requester)
        decision = judge(prepared.plan.request, identity, usage, self._policy)
        if decision != prepared.decision:
            self._store.record_decision(prepared.request_id, decision)
        return decision

    def submit_approved(self, prepared: Prepared, approver: Identity) -> JobRef:
        """Submit a request that needed an approver, as its requester (the plan's identity); the
        approval is audited first. A denied request stays denied: no approval lifts a hard rule."""
        decision = self._judged_again(prepared)
        if decision.verdict == Verdict.DENY:
            self._store.record_outcome(prepared.request_id, "denied", "; ".join(decision.reasons))
            raise PolicyDenied("not submitted, approval cannot lift: " + "; ".join(decision.reasons))
        self._store.audit(
            approver.requester,
            "approve",
            prepared.request_id,
            {"requester": prepared.plan.identity.requester, "reasons": list(prepared.decision.reasons)},
        )
        return self._submit_planned(prepared)

    def _submit_planned(self, prepared: Prepared) -> JobRef:
        backend = self._backend(prepared.plan.backend)
        with self._failure_recorded(prepared.request_id):
            ref = backend.submit(prepared.plan)
        self._store.record_submission(prepared.request_id, ref)
        self._store.audit(
            prepared.plan.identity.requester, "submit", ref.job_id, {"request_id": prepared.request_id}
        )
        return ref

    def settle(self, prepared: Prepared, outcome: str) -> None:
        """Record how a prepared request ended without a submission (dry run, declined at the prompt)."""
        self._store.record_outcome(prepared.request_id, outcome)

    # --- questions about jobs and the cluster ------------------------------------------------

    def queue(self, identity: Identity, *, mine: bool, backend: Target | None = None) -> list[JobStatus]:
        chosen = self._backend(backend)
        cluster_user = identity.k8s_user if chosen.name == "k8s" else identity.unix_user
        return chosen.queue(QueueFilter(user=cluster_user if mine else None))

    def status(self, identity: Identity, job_id: str, *, backend: Target | None = None) -> JobReport:
        backend = self._backend_for_job(job_id, backend)
        ref = JobRef(backend=self._backend_name(backend), job_id=job_id)
        found = self._backend(backend).statuses([ref])
        record = self._store.request_for_job(ref)
        if not found and record is None:
            raise JobNotFound(f"job {job_id} is not in the queue and was not submitted through the concierge")
        return JobReport(ref, found[0] if found else None, record)

    def why(self, job_id: str, *, backend: Target | None = None) -> list[PendingReason]:
        backend = self._backend_for_job(job_id, backend)
        ref = JobRef(backend=self._backend_name(backend), job_id=job_id)
        return self._backend(backend).explain(ref)

    def capacity(self, *, gpu_type: str | None = None, backend: Target | None = None) -> list[GpuPool]:
        pools = self._backend(backend).capacity()
        if gpu_type:
            pools = [p for p in pools if (p.gpu_type or "").lower() == gpu_type.lower()]
        return pools

    def cancel(self, identity: Identity, job_id: str, *, backend: Target | None = None) -> JobRef:
        backend = self._backend_for_job(job_id, backend)
        ref = JobRef(backend=self._backend_name(backend), job_id=job_id)
        self._backend(backend).cancel(ref, identity)
        self._store.audit(identity.requester, "cancel", job_id, None)
        return ref

    def scale(
        self, identity: Identity, job_id: str, replicas: int, *, backend: Target | None = None
    ) -> JobRef:
        chosen = self._backend(backend or "k8s")
        if not isinstance(chosen, Scalable):
            raise RequestInvalid(f"{chosen.name} jobs cannot be scaled; only Kubernetes services can")
        ref = JobRef(backend=chosen.name, job_id=job_id)
        chosen.scale(ref, replicas, identity)
        self._store.audit(identity.requester, "scale", job_id, {"replicas": replicas})
        return ref

    def history(self, identity: Identity, *, everyone: bool = False, limit: int = 20) -> list[RequestRecord]:
        return self._store.history(None if everyone else identity.requester, limit)

    @contextmanager
    def recorded(self, identity: Identity, door: str, text: str) -> Iterator[str]:
        """Record a question (queue, why, cancel…) and its outcome, so every request is in the store."""
        request_id = self._store.new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            yield request_id
        self._store.record_outcome(request_id, "answered")

    @contextmanager
    def _failure_recorded(self, request_id: str) -> Iterator[None]:
        """Whatever fails inside is written to the request's outcome before it propagates."""
        try:
            yield
        except ConciergeError as e:
            self._store.record_outcome(request_id, _outcome_of(e), e.message)
            raise
        except Exception as e:
            self._store.record_outcome(request_id, "failed", f"internal error: {type(e).__name__}")
            raise

    # --- helpers -----------------------------------------------------------------------------

    def _backend_for_job(self, job_id: str, backend: Target | None) -> Target | None:
        """Slurm job ids are numbers (`123`, `123_4`); a name (`vllm-mistral`, `ns/name`) is a
        Kubernetes workload, so "why isn't my deployment X running?" needs no --backend."""
        if backend is None and "k8s" in self._backends and not _SLURM_JOB_ID.match(job_id):
            return "k8s"
        return backend

    def _backend_name(self, backend: Target | None) -> Target:
        return backend or self._default_backend

    def _backend(self, backend: Target | None) -> Backend:
        name = self._backend_name(backend)
        try:
            return self._backends[name]
        except KeyError:
            configured = ", ".join(sorted(self._backends)) or "none"
            raise RequestInvalid(
                f"the {name} backend is not configured here (configured: {configured})"
            ) from None

    @staticmethod
    def _cluster_check(backend: Backend, plan: Plan) -> list[str]:
        try:
            return backend.validate(plan)
        except BackendUnavailable as e:
            return [
                f"the cluster could not be asked, the plan was made from configuration alone ({e.message})"
            ]

    @staticmethod
    def _not_a_submit_message(intent: Intent) -> str:
        if intent.kind == IntentKind.UNKNOWN:
            return intent.message or "I could not understand that as a GPU request"
        return f"that reads as a '{intent.kind.value}' question, not a job to submit"


def _outcome_of(error: ConciergeError) -> str:
    if isinstance(error, PolicyDenied | PermissionDenied):
        return "denied"
    if isinstance(error, RequestInvalid):
        return "invalid"
    return "failed"
