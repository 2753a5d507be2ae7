"""The engine: one flow for every door (understand → judge → plan → confirm → submit → store).

The doors (CLI today, Slack and the scheduler later) only translate to and from these calls; the
engine knows no Slack and no terminal. Every call that starts from a person's words is recorded in
the store before anything can fail, and its outcome is written whatever happens, so nothing a person
asked is ever lost.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Lock
from typing import Protocol

from backends.cluster_limits import ClusterGpuLimit, LimitAware
from backends.errors import (
    BackendRejected,
    BackendUnavailable,
    ConciergeError,
    ConfigurationError,
    JobNotFound,
    PermissionDenied,
    PolicyDenied,
    RequestInvalid,
)
from backends.protocol import Backend, Scalable
from backends.types import (
    Footprint,
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
from bot.answers import (
    ABOUT_A_JOB,
    Answer,
    CancelAnswer,
    ConfirmCancel,
    FreeAnswer,
    JobReport,
    KeptAnswer,
    Question,
    QueueAnswer,
    WhyAnswer,
)
from bot.confirmation import CONFIRMED, KEPT, ConfirmFirst, confirmation_for, confirmation_taken
from bot.holdings import ClusterHoldings, holdings_from, usage_of
from bot.job_output import ending_of, output_tail
from bot.logs import current_request_id
from bot.need_to_know import visible_record
from bot.store import RequestRecord, Store
from bot.store.lifecycle import (
    AWAITING_APPROVAL,
    AWAITING_CONFIRMATION,
    DENIED_BY_APPROVER,
    OPEN,
    SUBMITTING,
)
from bot.store.store import InFlight, utc_now
from policies import Decision, PolicySettings, Usage, Verdict, footprint_for, gpu_count_reasons, judge


class Understood(Protocol):
    """An answer that says more than the intent: the language model's routing (`bot.llm.routing.Routed`)
    carries a notice when the model could not be used and the grammar answered instead."""

    @property
    def intent(self) -> Intent: ...

    @property
    def notice(self) -> str | None: ...

    @property
    def model_called(self) -> bool: ...


# Why a job waits, phrased from the backend's reasons and the capacity now (bot.llm.phrasing).
PhraseWhy = Callable[[str, Sequence[PendingReason], Sequence[GpuPool]], str]

# The grammar returns an Intent; the routed reader returns an `Understood` with a notice to show.
Understand = Callable[[str], Intent | Understood]
log = logging.getLogger(__name__)
# Claim keys of approvals; named when only Slack asked for them, and kept so what was decided stays decided.
_APPROVAL_ASKED = "slack-approval-ask:"
_APPROVAL_DECIDED = "slack-approval-decision:"
_SLURM_JOB_ID = re.compile(r"^\d+(_\d+)?$")
# Questions that change nothing: `history` lists them only when asked to (`--all`).
_ASKED_ONLY = tuple(
    kind.value
    for kind in (
        IntentKind.QUEUE,
        IntentKind.STATUS,
        IntentKind.WHY_PENDING,
        IntentKind.CAPACITY,
        IntentKind.DIGEST,
        IntentKind.HELP,
    )
)

_REQUESTS_REMEMBERED = (
    4096  # for the metrics: a request answered later than this many newer ones counts as "unknown"
)


class RequestMetrics(Protocol):
    """What the engine reports of each request (bot/metrics.Metrics): its outcomes and how long the
    first took. Optional: the CLI passes none."""

    def request_outcome(self, intent: str, outcome: str) -> None: ...
    def request_answered(self, door: str, seconds: float) -> None: ...


@dataclass
class _Seen:
    door: str
    started: float
    intent: str = "unknown"  # until the request is understood
    answered: bool = False


@dataclass(frozen=True)
class Reading:
    """What a person's words were read as, the note to show when the model was not used, and the
    confirmation a door must get before acting on it (bot/confirmation.py decides which)."""

    text: str
    intent: Intent
    notice: str | None
    confirm_first: ConfirmFirst | None = None

    @property
    def question(self) -> Question:
        return Question.of(self.intent, self.confirm_first)


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


class Concierge:
    def __init__(
        self,
        store: Store,
        backends: Mapping[Target, Backend],
        understand: Understand,
        policy: PolicySettings,
        default_backend: Target = "slurm",
        phrase_why: PhraseWhy | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        # request id → (intent, door, when recorded), for the metrics only; the newest few thousand.
        self._requests_seen: OrderedDict[str, _Seen] = OrderedDict()
        self._seen_lock = Lock()
        self._backends = dict(backends)
        self._understand = understand
        self._policy = policy
        self._default_backend = default_backend
        self._phrase_why = phrase_why
        # Cluster reads run beside planning (see `_planned`); one thread per preview in flight.
        self._reads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="cluster-read")

    @property
    def policy(self) -> PolicySettings:
        return self._policy

    def understand(self, text: str) -> Intent:
        return self.read(text).intent

    def read(self, text: str) -> Reading:
        """The intent and, when the model could not be used, the note to show; pass it on to
        `prepare(reading=…)` so the same words are not read (and the model not asked) twice."""
        understood = self._understand(text)
        intent, notice = intent_and_notice(understood)
        return Reading(text, intent, notice, confirmation_for(understood))

    # --- submit path -------------------------------------------------------------------------

    def prepare(
        self,
        identity: Identity,
        text: str,
        door: str,
        *,
        backend: Target | None = None,
        check: bool = True,
        reading: Reading | None = None,
    ) -> Prepared:
        """Understand, judge and plan a submit request; `check` also asks the cluster (sbatch --test-only)."""
        request_id = self._new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            intent, notice = self._understood(request_id, text, reading, identity, backend)
            notices = (notice,) if notice else ()
            return self._planned(request_id, identity, intent, backend, check, notices)

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
        request_id = self._new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            intent = Intent(kind=IntentKind.SUBMIT, request=request)
            self._record_intent(request_id, intent)
            return self._planned(request_id, identity, intent, backend, check)

    def _planned(
        self,
        request_id: str,
        identity: Identity,
        intent: Intent,
        backend: Target | None,
        check: bool,
        notices: tuple[str, ...] = (),
    ) -> Prepared:
        chosen, footprint = self._sized(identity, intent, backend)
        # The person's jobs are read while the plan is made and tested: a preview costs the
        # slower of the two cluster calls, not their sum.
        reading = self._reads.submit(self._holdings_or_note, identity, chosen)
        limits_read = self._reads.submit(self._cluster_limits, identity, chosen, footprint)
        plan = chosen.plan(footprint, identity, request_id)
        tested: list[str] | BackendRejected = []
        if check:
            try:
                tested = self._cluster_check(chosen, plan)
            except BackendRejected as refused:
                tested = refused  # said only if the policy allows the request
        cluster, read_note = reading.result()
        limits, limits_note = limits_read.result()
        decision = self._judged(request_id, identity, footprint, cluster, limits)
        warnings = [*notices, *plan.warnings, *read_note, *limits_note]
        # The policy speaks first: what the cluster would say of a refused request is beside the point.
        if decision.verdict != Verdict.DENY:
            if isinstance(tested, BackendRejected):
                raise tested
            warnings.extend(tested)
        self._store.record_plan(request_id, plan)
        self._count_answer(request_id)  # the preview is the person's answer
        return Prepared(request_id, intent, decision, plan, tuple(warnings))

    def check_policy(
        self, identity: Identity, text: str, door: str, *, backend: Target | None = None
    ) -> Decision:
        """The policy's verdict on a request, without planning or asking the cluster to test it."""
        request_id = self._new_request(identity.requester, door, text)
        with self._failure_recorded(request_id):
            intent = self._understood(request_id, text, None, identity, backend)[0]
            chosen, footprint = self._sized(identity, intent, backend)
            cluster, _ = self._holdings_or_note(identity, chosen)
            limits, _ = self._cluster_limits(identity, chosen, footprint)
            decision = self._judged(request_id, identity, footprint, cluster, limits)
        self._record_outcome(request_id, "policy_check")
        return decision

    def _understood(
        self,
        request_id: str,
        text: str,
        reading: Reading | None,
        identity: Identity,
        backend: Target | None,
    ) -> tuple[Intent, str | None]:
        if reading is None or reading.text != text:
            reading = self.read(text)
        intent, notice = reading.intent, reading.notice
        self._record_intent(request_id, intent)
        if intent.kind != IntentKind.SUBMIT:
            message = self._not_a_submit_message(intent) + self._also_over_gpu_limits(
                identity, intent, backend
            )
            raise RequestInvalid(f"{message} ({notice})" if notice else message)
        return intent, notice

    def _also_over_gpu_limits(self, identity: Identity, intent: Intent, backend: Target | None) -> str:
        """For a request that cannot go on as written (a value past its bound, a question back): what
        the policy says of the GPUs read so far, so that every problem is told at once."""
        if intent.kind != IntentKind.UNKNOWN or not intent.request.gpus:
            return ""
        try:
            chosen, footprint = self._sized(identity, intent, backend)
            cluster, _ = self._holdings_or_note(identity, chosen)
        except ConciergeError:
            return ""  # nowhere to judge it (e.g. its backend is not configured): the first problem stands
        reasons = gpu_count_reasons(footprint, identity, self._usage(identity, cluster), self._policy)
        return f" Also, by the site's policy: {'; '.join(reasons)}." if reasons else ""

    def _sized(self, identity: Identity, intent: Intent, backend: Target | None) -> tuple[Backend, Footprint]:
        """The backend the request goes to, and what the job will hold there (its footprint)."""
        request = intent.request
        chosen = self._backend(backend or request.target or self._policy.routing.target_for(request.workload))
        return chosen, footprint_for(request, chosen.name, self._policy, identity)

    def _judged(
        self,
        request_id: str,
        identity: Identity,
        footprint: Footprint,
        cluster: ClusterHoldings | None,
        limits: tuple[ClusterGpuLimit, ...] = (),
    ) -> Decision:
        """The policy's verdict on the footprint against what the person holds now (recorded)."""
        decision = judge(footprint, identity, self._usage(identity, cluster, limits), self._policy)
        self._store.record_decision(request_id, decision)
        return decision

    def _usage(
        self, identity: Identity, cluster: ClusterHoldings | None, limits: tuple[ClusterGpuLimit, ...] = ()
    ) -> Usage:
        """What the person holds now: the cluster's listing plus what the store has in flight."""
        return usage_of(cluster, self._store.in_flight(identity.requester), limits)

    def _holdings_or_note(
        self, identity: Identity, backend: Backend
    ) -> tuple[ClusterHoldings | None, tuple[str, ...]]:
        """The person's jobs on the cluster, or None and a note when the cluster could not be read
        (a preview is then judged from the concierge's own records; Submit reads it again)."""
        try:
            return self._holdings(identity, backend), ()
        except BackendUnavailable as e:
            return None, (
                f"your jobs on the cluster could not be read ({e.message}); your GPU use was judged "
                "from the concierge's own records",
            )

    @staticmethod
    def _cluster_limits(
        identity: Identity, backend: Backend, footprint: Footprint
    ) -> tuple[tuple[ClusterGpuLimit, ...], tuple[str, ...]]:
        """The cluster's own GPU limits this request would meet (Slurm QOS/association), where the
        backend can read them, and a note when it could not (the preview is then judged without)."""
        if not isinstance(backend, LimitAware) or not identity.unix_user:
            return (), ()
        try:
            read = backend.gpu_limits(footprint, identity)
        except ConciergeError as e:
            return (), (f"the cluster's own GPU limits could not be read ({e.message})",)
        return read.limits, ((read.note,) if read.note else ())

    def _holdings(self, identity: Identity, backend: Backend) -> ClusterHoldings | None:
        """The person's jobs on the cluster now (one listing); None when they have no account
        there that a listing could be filtered by."""
        user = identity.k8s_user if backend.name == "k8s" else identity.unix_user
        if not user:
            return None
        read_at = utc_now()
        return holdings_from(backend.name, backend.queue(QueueFilter(user=user)), read_at)

    def submit(self, prepared: Prepared) -> JobRef:
        """Submit a previewed request once: judged again against what the person holds now and
        marked `submitting` in one step serialised per person (so parallel submits cannot add up
        past a limit), then given to the cluster, then recorded. Raises AlreadySubmitted when
        another caller got there first."""
        return self._admitted(prepared, from_outcomes=OPEN, approver=None)

    def submit_approved(self, prepared: Prepared, approver: Identity) -> JobRef:
        """Submit a request that needed an approver, as its requester (the plan's identity); the
        approval is audited first. A denied request stays denied: no approval lifts a hard rule."""
        return self._admitted(prepared, from_outcomes=(AWAITING_APPROVAL,), approver=approver)

    def _admitted(
        self, prepared: Prepared, *, from_outcomes: Sequence[str], approver: Identity | None
    ) -> JobRef:
        request_id, plan = prepared.request_id, prepared.plan
        identity, footprint = plan.identity, plan.footprint
        backend = self._backend(plan.backend)
        # Unrecorded on purpose: a cluster that cannot be read leaves the preview `planned`, so the
        # person can submit it again once it answers.
        # Both read at once, as for the preview: Submit costs the slower cluster call, not the sum.
        limits_read = self._reads.submit(self._cluster_limits, identity, backend, footprint)
        cluster = self._reads.submit(self._holdings, identity, backend).result()
        limits, _ = limits_read.result()
        with self._failure_recorded(request_id):

            def judged(in_flight: Sequence[InFlight]) -> tuple[Decision, bool]:
                decision = judge(footprint, identity, usage_of(cluster, in_flight, limits), self._policy)
                # An approver lifts "needs approval", never a denial.
                lifted = approver is not None and decision.verdict == Verdict.NEEDS_APPROVAL
                return decision, decision.verdict == Verdict.ALLOW or lifted

            decision = self._store.admit(
                request_id, identity.requester, footprint.total_gpus, judged, from_outcomes=from_outcomes
            )
        if decision is None:
            raise self._already_submitted(request_id)
        if decision != prepared.decision:
            self._store.record_decision(request_id, decision)
        reasons = "; ".join(decision.reasons)
        if decision.verdict == Verdict.DENY:
            self._record_outcome(request_id, "denied", reasons)
            lifted = ", approval cannot lift" if approver else ""
            raise PolicyDenied(f"not submitted{lifted}: {reasons}")
        if decision.verdict == Verdict.NEEDS_APPROVAL and approver is None:
            self._record_outcome(request_id, "needs_approval", reasons)
            raise PolicyDenied(
                f"not submitted, this request needs an approver: {reasons}. "
                "Ask an admin, or make the request smaller."
            )
        if approver is not None:
            self._store.audit(
                approver.requester,
                "approve",
                request_id,
                {"requester": identity.requester, "reasons": list(prepared.decision.reasons)},
            )
        ref = self._given_to_cluster(backend, prepared)
        try:
            self._store.record_submission(request_id, ref)
            self._count_outcome(request_id, "submitted")
            self._store.audit(identity.requester, "submit", ref.job_id, {"request_id": request_id})
        except ConciergeError as e:
            raise SubmittedNotRecorded(ref, request_id, e.message) from e
        return ref

    def _given_to_cluster(self, backend: Backend, prepared: Prepared) -> JobRef:
        """The job the cluster made. When its answer was lost (timeout, connection dropped) the
        job may exist anyway: it is looked for by the request id it carries before anyone is told
        it failed. Where that cannot be told, the request stays `submitting` for the reconciler,
        and the person is told not to submit again."""
        request_id = prepared.request_id
        # Anything but a ConciergeError (a bug) leaves the request `submitting`: the reconciler
        # decides from the cluster whether a job was made.
        try:
            return backend.submit(prepared.plan)
        except BackendUnavailable as e:
            try:
                found = find_tagged(backend, request_id)
            except ConciergeError:
                raise BackendUnavailable(
                    f"{e.message}. The cluster may have accepted the job before the answer was lost, and "
                    f"it could not be asked: do not submit again. The concierge will find the job by its "
                    f"request id {request_id} and record it (`concierge history` shows it), or record "
                    "that none was made.",
                    retry_after=e.retry_after,
                ) from e
            if found is not None:
                return found
            self._recorded_outcome(request_id, "failed", e.message)
            raise
        except ConciergeError as e:
            self._recorded_outcome(request_id, _outcome_of(e), e.message)
            raise

    # --- approvals -------------------------------------------------------------------------------

    def ask_approval(self, identity: Identity, request_id: str) -> Prepared | None:
        """Send a preview that needs an approver to them: it waits (`awaiting_approval`) from now on.
        None when it was sent already (a second click, a retry, another replica)."""
        record = self._store.request(request_id)
        if record.requester != identity.requester:
            raise PermissionDenied("only the person who asked can request approval for this request")
        prepared = prepared_from(record)
        if prepared.decision.verdict != Verdict.NEEDS_APPROVAL or record.job_id is not None:
            raise RequestInvalid(f"request {request_id[:8]} does not wait for an approval")
        if not self._store.claim(f"{_APPROVAL_ASKED}{request_id}", identity.requester):
            return None
        self._record_outcome(request_id, AWAITING_APPROVAL)
        return prepared

    def decision_claimed(self, approver: Identity, record: RequestRecord) -> bool:
        """Whether `approver`'s decision on the request is the one that counts: it still waits, and
        no other decision was claimed (a double click, a retry, Approve racing Deny, a replica)."""
        key = f"{_APPROVAL_DECIDED}{record.id}"
        return record.outcome == AWAITING_APPROVAL and self._store.claim(key, approver.requester)

    def deny_approval(self, approver: Identity, record: RequestRecord, reason: str) -> None:
        """A claimed decision to deny (`decision_claimed`): recorded and audited; nothing runs."""
        self._record_outcome(record.id, DENIED_BY_APPROVER, reason)
        self._store.audit(
            approver.requester, "deny", record.id, {"requester": record.requester, "reason": reason}
        )

    def _already_submitted(self, request_id: str) -> AlreadySubmitted:
        record = self._store.request(request_id)
        return AlreadySubmitted(request_id, record.job_id, record.outcome, record.error)

    def not_planned(
        self, requester: str, door: str, text: str, intent: Intent, outcome: str, why: str
    ) -> None:
        """Record a message answered without a plan (not understood, or asked a clarifying question
        about): what was asked, how it was read, and why it went no further."""
        request_id = self._new_request(requester, door, text)
        self._record_intent(request_id, intent)
        self._record_outcome(request_id, outcome, why)

    def settle(self, prepared: Prepared, outcome: str) -> None:
        """Record how a prepared request ended without a submission (dry run, declined at the prompt)."""
        self._record_outcome(prepared.request_id, outcome)

    # --- questions about jobs and the cluster ------------------------------------------------

    def answer(self, identity: Identity, question: Question, door: str) -> Answer:
        """Answer a question verb, recorded with its outcome whatever happens. A cancel the model
        read is not carried out: it is stored as a `ConfirmCancel` for the person to answer."""
        request_id = self._new_request(identity.requester, door, question.words)
        with self._failure_recorded(request_id):
            # Recorded with its kind, so `history` can tell a question from a job request.
            self._record_intent(request_id, Intent(kind=question.kind, job=question.job))
            if question.kind in ABOUT_A_JOB and not question.job:
                raise RequestInvalid(f"which job? e.g. `{question.verb} 1234`")
            if question.confirm_first is not None:
                self._record_outcome(request_id, AWAITING_CONFIRMATION)
                return ConfirmCancel(request_id, question.confirm_first)
            answer = self._answered(identity, question)
        self._record_outcome(request_id, "answered")
        return answer

    def confirm(self, identity: Identity, request_id: str, *, confirmed: bool) -> Answer:
        """The person's answer to a `ConfirmCancel`: counted only when they were the one asked, and
        only once (a second click, a Slack retry, another replica is told it was answered)."""
        order = confirmation_taken(self._store, request_id, identity.requester)
        if not confirmed:
            self._record_outcome(request_id, KEPT)
            return KeptAnswer(order.job)
        with self._failure_recorded(request_id):
            answer = self._answered(identity, Question(order.kind, order.job))
        self._record_outcome(request_id, CONFIRMED)
        return answer

    def _answered(self, identity: Identity, question: Question) -> Answer:
        if question.kind == IntentKind.QUEUE:
            jobs = self.queue(identity, mine=question.mine, backend=question.backend)
            return QueueAnswer([j for j in jobs if question.everything or not j.state.is_final])
        if question.kind == IntentKind.CAPACITY:
            return FreeAnswer(self.capacity(gpu_type=question.gpu_type, backend=question.backend))
        job = question.job or ""
        if question.kind == IntentKind.STATUS:
            return self.status(identity, job, backend=question.backend)
        target = self._backend_for_job(job, question.backend)
        backend, ref = self._backend(target), JobRef(backend=self._backend_name(target), job_id=job)
        if question.kind == IntentKind.WHY_PENDING:
            reasons = backend.explain(ref)
            return WhyAnswer(job, reasons, self._why_in_words(job, reasons, target))
        if question.kind == IntentKind.CANCEL:
            backend.cancel(ref, identity)
            self._store.audit(identity.requester, "cancel", job, None)
            return CancelAnswer(job)
        raise RequestInvalid(f"'{question.kind.value}' is not a question about jobs or GPUs")

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
        status = found[0] if found else None
        output = output_tail(identity, ending_of(status, record), status, record)
        return JobReport(ref, status, visible_record(identity, record, status) if record else None, output)

    def _why_in_words(
        self, job_id: str, reasons: Sequence[PendingReason], backend: Target | None
    ) -> str | None:
        """`reasons` phrased by the language model when one is configured (from these facts and the
        capacity now, nothing else); None when the door's plain template should answer."""
        if self._phrase_why is None or not reasons:
            return None
        try:
            pools = self.capacity(backend=backend)
        except BackendUnavailable:
            pools = []
        return self._phrase_why(job_id, reasons, pools)

    def capacity(self, *, gpu_type: str | None = None, backend: Target | None = None) -> list[GpuPool]:
        pools = self._backend(backend).capacity()
        if gpu_type:
            pools = [p for p in pools if (p.gpu_type or "").lower() == gpu_type.lower()]
        return pools

    def scale(
        self, identity: Identity, job_id: str, replicas: int, door: str, *, backend: Target | None = None
    ) -> JobRef:
        """Change a service's replicas (Kubernetes), recorded and audited."""
        request_id = self._new_request(identity.requester, door, f"scale {job_id} {replicas}")
        with self._failure_recorded(request_id):
            chosen = self._backend(backend or "k8s")
            if not isinstance(chosen, Scalable):
                raise RequestInvalid(f"{chosen.name} jobs cannot be scaled; only Kubernetes services can")
            ref = JobRef(backend=chosen.name, job_id=job_id)
            chosen.scale(ref, replicas, identity)
            self._store.audit(identity.requester, "scale", job_id, {"replicas": replicas})
        self._record_outcome(request_id, "answered")
        return ref

    def history(
        self, identity: Identity, *, everyone: bool = False, limit: int = 20, questions: bool = True
    ) -> list[RequestRecord]:
        """The requests and their outcomes, newest first; without `questions`, only what asked for a
        job or changed one (submits, cancels, what could not be read), not the queue, status, why,
        free or policy checks."""
        left_out = () if questions else _ASKED_ONLY
        records = self._store.history(
            None if everyone else identity.requester,
            limit,
            leave_out_kinds=left_out,
            leave_out_outcomes=("policy_check",) if left_out else (),
        )
        return [visible_record(identity, record) for record in records]

    # --- the store's lifecycle writes, counted once here for every door (bot/metrics.py) ----------

    def _new_request(self, requester: str, door: str, text: str) -> str:
        request_id = self._store.new_request(requester, door, text)
        current_request_id.set(request_id)  # the log lines from here on name it (bot/logs.py)
        if self._metrics is not None:
            self._seen(request_id, _Seen(door=door, started=time.perf_counter()))
        return request_id

    def _record_intent(self, request_id: str, intent: Intent) -> None:
        self._store.record_intent(request_id, intent)
        if self._metrics is not None:
            with self._seen_lock:
                seen = self._requests_seen.get(request_id)
                if seen is not None:
                    seen.intent = intent.kind.value

    def _record_outcome(self, request_id: str, outcome: str, error: str | None = None) -> None:
        self._store.record_outcome(request_id, outcome, error)
        self._count_outcome(request_id, outcome)

    def _count_outcome(self, request_id: str, outcome: str) -> None:
        """One count per outcome written (a request that waits for approval, then is submitted,
        counts under both)."""
        if self._metrics is None:
            return
        with self._seen_lock:
            seen = self._requests_seen.get(request_id)
        self._metrics.request_outcome(seen.intent if seen else "unknown", outcome)
        self._count_answer(request_id)

    def _count_answer(self, request_id: str) -> None:
        """The answer latency, once per request: at its preview (a plan) or its first outcome."""
        if self._metrics is None:
            return
        with self._seen_lock:
            seen = self._requests_seen.get(request_id)
            if seen is None or seen.answered:
                return
            seen.answered = True
        self._metrics.request_answered(seen.door, time.perf_counter() - seen.started)

    def _seen(self, request_id: str, seen: _Seen) -> None:
        with self._seen_lock:
            self._requests_seen[request_id] = seen
            while len(self._requests_seen) > _REQUESTS_REMEMBERED:
                self._requests_seen.popitem(last=False)

    @contextmanager
    def _failure_recorded(self, request_id: str) -> Iterator[None]:
        """Whatever fails inside is written to the request's outcome before it propagates."""
        try:
            yield
        except ConciergeError as e:
            self._recorded_outcome(request_id, _outcome_of(e), e.message)
            raise
        except Exception as e:
            self._recorded_outcome(request_id, "failed", f"internal error: {type(e).__name__}")
            raise

    def _recorded_outcome(self, request_id: str, outcome: str, error: str) -> None:
        """Record how a request failed; a store that fails too must not hide the first error."""
        try:
            self._record_outcome(request_id, outcome, error)
        except ConciergeError:
            log.warning("could not record the outcome of request %s (%s)", request_id, outcome)

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
            raise ConfigurationError(
                f"the {name} backend is not configured here (configured: {configured}): "
                "set CONCIERGE_K8S__KUBECONFIG to a kubeconfig file (in a pod, any CONCIERGE_K8S__… "
                "setting turns on its service account), or choose another with --backend"
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


class AlreadySubmitted(RequestInvalid):
    """Another caller (a second click, another replica) submitted or is submitting this request."""

    def __init__(self, request_id: str, job_id: str | None, outcome: str, error: str | None = None) -> None:
        if job_id is not None:
            said = f"request {request_id[:8]} was submitted already, as job {job_id}"
        elif outcome == SUBMITTING:
            said = f"request {request_id[:8]} is being submitted already"
        else:
            why = error or outcome.replace("_", " ")
            said = f"request {request_id[:8]} was not submitted ({why}); it is not submitted again"
        super().__init__(said)
        self.request_id = request_id
        self.job_id = job_id
        self.outcome = outcome


class SubmittedNotRecorded(BackendUnavailable):
    """The cluster made the job, but the store could not record it. The job carries the request id,
    so the reconciler records it once the store is back; the person must not submit again."""

    def __init__(self, ref: JobRef, request_id: str, why: str) -> None:
        super().__init__(
            f"job {ref.job_id} was submitted and runs as you, but the concierge could not record it "
            f"({why}). Do not submit it again: the job carries request id {request_id} and is "
            "recorded automatically once the database answers (`concierge status "
            f"{ref.job_id}` shows it meanwhile).",
            retry_after=30.0,
        )
        self.ref = ref


def find_tagged(backend: Backend, request_id: str) -> JobRef | None:
    """The job that carries this request id (Slurm comment, Kubernetes label), if the cluster has one."""
    for status in backend.queue(QueueFilter()):
        if status.request_id == request_id:
            return status.ref
    return None


def _outcome_of(error: ConciergeError) -> str:
    if isinstance(error, PolicyDenied | PermissionDenied):
        return "denied"
    if isinstance(error, RequestInvalid):
        return "invalid"
    return "failed"


def intent_and_notice(understood: Intent | Understood) -> tuple[Intent, str | None]:
    """The intent, and the note to show with it (None for the grammar's plain Intent)."""
    if isinstance(understood, Intent):
        return understood, None
    return understood.intent, understood.notice


def prepared_from(record: RequestRecord, again: str = "ask again") -> Prepared:
    """The `Prepared` a preview showed, rebuilt from what `prepare`/`prepare_request` stored, so a
    click or a "yes" on any replica acts on exactly what was shown. `again` tells the person what
    to do when there is no plan (it depends on the door)."""
    if record.plan is None or record.decision is None or record.intent is None:
        raise RequestInvalid(f"request {record.id[:8]} has no plan to submit ({record.outcome}); {again}")
    plan = Plan.model_validate(record.plan)
    printed = dict(record.intent)
    intent = Intent(
        kind=IntentKind(printed.pop("intent")),
        job=printed.pop("job", None),
        message=printed.pop("message", None),
        request=JobRequest.model_validate(printed),
    )
    return Prepared(record.id, intent, Decision.model_validate(record.decision), plan, plan.warnings)
