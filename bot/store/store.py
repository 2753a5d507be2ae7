"""The concierge's memory: who is who, every request and what became of it, job states, audit.

A request is written the moment it arrives (`new_request`) and each later step updates it, so
whatever fails afterwards, what the person asked is already kept with its error.

Recording a job's state is a compare-and-set on the request's row: one UPDATE … WHERE the last
(state, reason) differs and the observation is not older than the last one. Whoever's UPDATE
matches also inserts the `job_states` row, in the same transaction. On PostgreSQL a second
tracker's UPDATE waits for the first's row lock and re-checks its WHERE against the committed
row, so it matches nothing; on SQLite writers are serialised by BEGIN IMMEDIATE. No SELECT …
FOR UPDATE (which SQLite lacks) and no retry loop are needed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from uuid import uuid4

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from backends.errors import ConciergeError, JobNotFound
from backends.types import Identity, Intent, JobEnding, JobRef, JobState, Plan
from bot.store.conversation_tables import ConversationKey, ConversationRow, ConversationState
from bot.store.database import (
    conflict_insert,
    create_store_engine,
    inserted_first,
    supported_url,
    unavailable_as_error,
    upgrade_to_head,
    writing,
)
from bot.store.lifecycle import (
    ACTIVE,
    FAILED,
    OPEN,
    PLANNED,
    RECEIVED,
    RUNNING,
    SUBMITTED,
    SUBMITTING,
    UNKNOWN,
)
from bot.store.records import AuditEvent, RequestRecord
from bot.store.tables import (
    AuditRow,
    ClaimRow,
    IdentityRow,
    RequestRow,
    SlackThreadRow,
    StateRow,
)
from bot.store.thread_updates import ThreadUpdates

if TYPE_CHECKING:
    from bot.settings import RollupSettings
    from bot.store.health import Revisions
    from bot.store.schedule import ScheduleStore
    from bot.store.telemetry import TelemetryStore

ADMISSION_LOCK_SPACE = 0x41444D54  # "ADMT": the advisory-lock key space of per-person admission
_RUNNING = frozenset({JobState.RUNNING, JobState.COMPLETING, JobState.SUSPENDED})


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contracted(Protocol):
    """A value recorded in its printed form (a policy `Decision`): the store does not judge."""

    def to_contract(self) -> dict[str, Any]: ...


Verdict = TypeVar("Verdict")


@dataclass(frozen=True)
class InFlight:
    """A request of the person's that holds or may soon hold GPUs, as the store knows it."""

    request_id: str
    backend: str | None
    job_id: str | None
    gpus: int
    submitting: bool  # admitted, its job not recorded yet
    since: datetime  # when the store last wrote it


class Store:
    def __init__(self, database_url: str) -> None:
        self._url = supported_url(database_url)
        self._engine = create_store_engine(self._url)
        self._reads = sessionmaker(self._engine, expire_on_commit=False)
        self._writes = sessionmaker(writing(self._engine), expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._engine

    def telemetry(self, rollup: RollupSettings) -> TelemetryStore:
        """The GPU roll-up tables of this database."""
        from bot.store.telemetry import TelemetryStore  # it imports this module

        return TelemetryStore(self._engine, rollup)

    def schedule(self) -> ScheduleStore:
        """The schedule's runs, leases and nudges in this database."""
        from bot.store.schedule import ScheduleStore

        return ScheduleStore(self._engine)

    @property
    def thread_updates(self) -> ThreadUpdates:
        """Which recorded job states are still to be posted in their Slack threads."""
        return ThreadUpdates(self._engine)

    def migrate(self) -> None:
        """Bring the schema to the current revision; at head it only reads the version table."""
        upgrade_to_head(self._engine)

    def revisions(self) -> Revisions:
        """The database's migration revision beside the code's; raises the store's error when the
        database cannot be read (bot/store/health.py)."""
        from bot.store.health import revisions

        return revisions(self._engine)

    def write_refused(self) -> str | None:
        """None when a row can be written (it is rolled back at once), else why not."""
        from bot.store.health import write_refused

        return write_refused(self._engine)

    def unready(self) -> str | None:
        """None when the database answers, else why not: what a readiness probe reports."""
        try:
            self.revisions()
        except ConciergeError as e:
            return f"the database cannot be read: {e.message}"
        return None

    def close(self) -> None:
        self._engine.dispose()

    # --- identities ---------------------------------------------------------------------------

    def map_identity(
        self, identity: Identity, *, by: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        """Map a person to their cluster identities; `by` (who mapped them) is audited with it, in the
        same transaction (`detail`, or the mapping itself)."""
        now = utc_now()
        values = {
            "unix_user": identity.unix_user,
            "k8s_user": identity.k8s_user,
            "k8s_groups": list(identity.k8s_groups),
            "default_namespace": identity.default_namespace,
            "is_admin": identity.is_admin,
            "updated_at": now,
        }
        insert = conflict_insert(self._engine)
        statement = insert(IdentityRow).values(requester=identity.requester, created_at=now, **values)
        statement = statement.on_conflict_do_update(index_elements=[IdentityRow.requester], set_=values)
        with self._writing() as session:
            session.execute(statement)
            if by is not None:
                audited = detail or identity.model_dump(mode="json")
                session.add(
                    AuditRow(
                        at=now, actor=by, action="map_identity", subject=identity.requester, detail=audited
                    )
                )

    def identity_for(self, requester: str) -> Identity | None:
        with self._reading() as session:
            row = session.get(IdentityRow, requester)
            return None if row is None else _identity(row)

    def identities(self) -> list[Identity]:
        """Everyone mapped, by requester."""
        with self._reading() as session:
            return [
                _identity(row) for row in session.scalars(select(IdentityRow).order_by(IdentityRow.requester))
            ]

    def unmap_identity(self, requester: str, *, by: str) -> bool:
        """Forget a person's mapping (audited with `by`); False when there was none. Their requests stay."""
        with self._writing() as session:
            row = session.get(IdentityRow, requester)
            if row is None:
                return False
            session.delete(row)
            session.add(
                AuditRow(at=utc_now(), actor=by, action="unmap_identity", subject=requester, detail={})
            )
            return True

    # --- requests -----------------------------------------------------------------------------

    def new_request(self, requester: str, door: str, text: str, idempotency_key: str | None = None) -> str:
        """Store what was asked at once; a repeated idempotency key returns the first request's id."""
        if idempotency_key is not None and (existing := self._request_with_key(idempotency_key)):
            return existing
        request_id, now = str(uuid4()), utc_now()
        row = RequestRow(
            id=request_id,
            requester=requester,
            door=door,
            text=text,
            outcome=RECEIVED,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._writing() as session:
                session.add(row)
        except IntegrityError:
            # Another process stored the same key between our look-up and our insert.
            existing = self._request_with_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing
        return request_id

    def record_intent(self, request_id: str, intent: Intent) -> None:
        self._update(request_id, intent=intent.to_contract())

    def record_decision(self, request_id: str, decision: Contracted) -> None:
        self._update(request_id, decision=decision.to_contract())

    def record_plan(self, request_id: str, plan: Plan) -> None:
        self._update(
            request_id,
            backend=plan.backend,
            plan=plan.model_dump(mode="json"),
            gpus=plan.footprint.total_gpus,
            outcome=PLANNED,
        )

    def admit(
        self,
        request_id: str,
        requester: str,
        gpus: int,
        judge: Callable[[Sequence[InFlight]], tuple[Verdict, bool]],
        *,
        from_outcomes: Sequence[str],
    ) -> Verdict | None:
        """Judge a submit against what the person already has in flight and, if `judge` says the
        verdict admits it, mark it `submitting` with its GPUs, in one transaction serialised per
        person (PostgreSQL: an advisory lock on the requester; SQLite: BEGIN IMMEDIATE). So N
        parallel submits cannot all be judged against the same usage. None when the request is no
        longer in `from_outcomes` (someone else is submitting it, or did): the caller reports that
        instead of submitting."""
        with self._writing() as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:space, hashtext(:who))"),
                    {"space": ADMISSION_LOCK_SPACE, "who": requester},
                )
            outcome = connection.scalar(select(RequestRow.outcome).where(RequestRow.id == request_id))
            if outcome is None:
                raise _no_request(request_id)
            if outcome not in from_outcomes:
                return None
            verdict, admitted = judge(self._in_flight(connection, requester, request_id))
            if admitted:
                connection.execute(
                    update(RequestRow)
                    .where(RequestRow.id == request_id)
                    .values(outcome=SUBMITTING, gpus=gpus, error=None, updated_at=utc_now())
                )
            return verdict

    def in_flight(self, requester: str) -> list[InFlight]:
        """The person's requests that hold or may hold GPUs: submitting, submitted, running."""
        with self._reading() as session:
            return self._in_flight(session.connection(), requester, None)

    @staticmethod
    def _in_flight(connection: Connection, requester: str, besides: str | None) -> list[InFlight]:
        statement = select(
            RequestRow.id,
            RequestRow.backend,
            RequestRow.job_id,
            RequestRow.gpus,
            RequestRow.outcome,
            RequestRow.updated_at,
        ).where(RequestRow.requester == requester, RequestRow.outcome.in_((SUBMITTING, *ACTIVE)))
        if besides is not None:
            statement = statement.where(RequestRow.id != besides)
        return [
            InFlight(request_id=i, backend=b, job_id=j, gpus=g or 0, submitting=o == SUBMITTING, since=u)
            for i, b, j, g, o, u in connection.execute(statement)
        ]

    def submitting(self) -> list[InFlight]:
        """Requests admitted whose job was not recorded: what the reconciler looks for."""
        statement = select(
            RequestRow.id, RequestRow.backend, RequestRow.job_id, RequestRow.gpus, RequestRow.updated_at
        ).where(RequestRow.outcome == SUBMITTING)
        with self._reading() as session:
            return [
                InFlight(request_id=i, backend=b, job_id=j, gpus=g or 0, submitting=True, since=u)
                for i, b, j, g, u in session.execute(statement)
            ]

    def abandon_submission(self, request_id: str, error: str) -> bool:
        """A `submitting` request that reached no cluster: recorded as failed, once."""
        with self._writing() as session:
            result = session.connection().execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, RequestRow.outcome == SUBMITTING)
                .values(outcome=FAILED, error=error, updated_at=utc_now())
            )
            return result.rowcount == 1

    def record_submission(self, request_id: str, ref: JobRef) -> bool:
        """Mark the request submitted as `ref`; False when it already was (the reconciler and the
        submitting process may both record it). An older unfinished request with the same job id
        (the scheduler was reset and reuses ids) is closed as `unknown`, or it would be tracked
        and counted against its owner forever."""
        now = utc_now()
        with self._writing() as session:
            connection = session.connection()
            result = connection.execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, RequestRow.job_id.is_(None))
                .values(
                    backend=ref.backend,
                    job_id=ref.job_id,
                    cluster=ref.cluster,
                    outcome=SUBMITTED,
                    error=None,
                    updated_at=now,
                )
            )
            if result.rowcount == 0:
                recorded = connection.scalar(select(RequestRow.job_id).where(RequestRow.id == request_id))
                if recorded is None:
                    raise _no_request(request_id)
                return False
            connection.execute(
                update(RequestRow)
                .where(_is_job(ref), RequestRow.id != request_id, RequestRow.outcome.in_(ACTIVE))
                .values(
                    outcome=UNKNOWN,
                    error=f"the scheduler gave job id {ref.job_id} to a later request ({request_id}); "
                    "how this job ended was not observed",
                    updated_at=now,
                )
            )
            return True

    def record_outcome(self, request_id: str, outcome: str, error: str | None = None) -> None:
        self._update(request_id, outcome=outcome, error=error)

    def record_state(
        self,
        ref: JobRef,
        state: JobState,
        reason: str | None,
        observed_at: datetime,
        ending: JobEnding | None = None,
    ) -> bool:
        """Record a transition of the job's (state, reason), with how it ended when it did; False when
        it is not one (or is stale)."""
        if observed_at.tzinfo is None:
            raise ValueError(f"observed_at must be timezone-aware, got {observed_at.isoformat()}")
        with self._writing() as session:
            request_id = session.scalar(
                select(RequestRow.id)
                .where(_is_job(ref))
                .order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
                .limit(1)
            )
            if request_id is None:
                raise JobNotFound(
                    f"job {ref.job_id} ({ref.backend}) was not submitted through the concierge, "
                    "so its states are not recorded"
                )
            changed = or_(
                RequestRow.state.is_distinct_from(state.value),
                RequestRow.state_reason.is_distinct_from(reason),
            )
            not_older = or_(
                RequestRow.state_observed_at.is_(None), RequestRow.state_observed_at <= observed_at
            )
            claimed = session.connection().execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, changed, not_older)
                .values(
                    state=state.value,
                    state_reason=reason,
                    state_observed_at=observed_at,
                    # A requeued job comes back from a final state, so it is tracked again.
                    outcome=state.value if state.is_final else (RUNNING if state in _RUNNING else SUBMITTED),
                    updated_at=utc_now(),
                )
            )
            if claimed.rowcount == 0:
                return False
            session.add(
                StateRow(
                    request_id=request_id,
                    job_id=ref.job_id,
                    backend=ref.backend,
                    state=state.value,
                    reason=reason,
                    observed_at=observed_at,
                    ending=ending.model_dump(mode="json", exclude_none=True) if ending else None,
                )
            )
            return True

    def request(self, request_id: str) -> RequestRecord:
        with self._reading() as session:
            row = session.scalar(
                select(RequestRow).options(selectinload(RequestRow.states)).where(RequestRow.id == request_id)
            )
            if row is None:
                raise _no_request(request_id)
            return _record(row)

    def request_for_job(self, ref: JobRef) -> RequestRecord | None:
        """The newest request that became this job (job ids are reused when a scheduler is reset)."""
        with self._reading() as session:
            row = session.scalar(
                select(RequestRow)
                .options(selectinload(RequestRow.states))
                .where(_is_job(ref))
                .order_by(RequestRow.created_at.desc(), RequestRow.id.desc())
                .limit(1)
            )
            return None if row is None else _record(row)

    def history(
        self,
        requester: str | None,
        limit: int = 20,
        *,
        leave_out_kinds: Collection[str] = (),
        leave_out_outcomes: Collection[str] = (),
    ) -> list[RequestRecord]:
        """Newest first; `None` means everyone's (for admins). Requests of the `leave_out_…` intent
        kinds and outcomes (the questions) are left out in the query, so `limit` counts what is listed."""
        statement = select(RequestRow).options(selectinload(RequestRow.states))
        if requester is not None:
            statement = statement.where(RequestRow.requester == requester)
        if leave_out_kinds:
            kind = func.coalesce(RequestRow.intent["intent"].as_string(), "")
            statement = statement.where(kind.not_in(leave_out_kinds))
        if leave_out_outcomes:
            statement = statement.where(RequestRow.outcome.not_in(leave_out_outcomes))
        statement = statement.order_by(RequestRow.created_at.desc(), RequestRow.id.desc()).limit(limit)
        with self._reading() as session:
            return [_record(row) for row in session.scalars(statement)]

    def tracked_jobs(self) -> list[JobRef]:
        """Jobs submitted and not seen to end: what a tracker polls."""
        statement = (
            select(RequestRow.backend, RequestRow.job_id, RequestRow.cluster)
            .where(
                RequestRow.outcome.in_(ACTIVE),
                RequestRow.job_id.is_not(None),
                RequestRow.backend.is_not(None),
            )
            .distinct()
        )
        with self._reading() as session:
            rows = session.execute(statement).all()
        refs = [JobRef.model_validate({"backend": b, "job_id": j, "cluster": c}) for b, j, c in rows]
        return sorted(refs, key=lambda ref: (ref.backend, ref.cluster or "", _job_sort_key(ref.job_id)))

    # --- once-only claims ---------------------------------------------------------------------

    def claim(self, key: str, actor: str) -> bool:
        """True for exactly one caller per key, however many try at once, on any replica."""
        with self._writing() as session:
            return inserted_first(
                session.connection(), ClaimRow, [ClaimRow.key], key=key, actor=actor, claimed_at=utc_now()
            )

    # --- audit --------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None) -> None:
        with self._writing() as session:
            session.add(AuditRow(at=utc_now(), actor=actor, action=action, subject=subject, detail=detail))

    def audit_events(self, subject: str | None = None, limit: int = 50) -> list[AuditEvent]:
        """Newest first; `subject` narrows to one job or request."""
        statement = select(AuditRow)
        if subject is not None:
            statement = statement.where(AuditRow.subject == subject)
        statement = statement.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
        with self._reading() as session:
            return [AuditEvent.model_validate(e, from_attributes=True) for e in session.scalars(statement)]

    # --- Slack threads ------------------------------------------------------------------------

    def remember_thread(self, request_id: str, channel: str, ts: str | None) -> bool:
        """Where the request's job updates go; the first caller wins, and an empty `ts` may be
        filled once later (in the same channel). True when what this call says is now stored."""
        thread = SlackThreadRow
        try:
            with self._writing() as session:
                connection = session.connection()
                if inserted_first(
                    connection,
                    thread,
                    [thread.request_id],
                    request_id=request_id,
                    channel=channel,
                    thread_ts=ts,
                    created_at=utc_now(),
                ):
                    return True
                if ts is None:
                    return False
                filled = connection.execute(
                    update(SlackThreadRow)
                    .where(
                        SlackThreadRow.request_id == request_id,
                        SlackThreadRow.channel == channel,
                        SlackThreadRow.thread_ts.is_(None),
                    )
                    .values(thread_ts=ts)
                )
                return filled.rowcount == 1
        except IntegrityError as e:  # the request does not exist (foreign key)
            raise _no_request(request_id) from e

    def thread_for(self, request_id: str) -> tuple[str, str | None] | None:
        """(channel, thread ts or None while nothing anchors it), or None when not from Slack."""
        with self._reading() as session:
            row = session.get(SlackThreadRow, request_id)
            return None if row is None else (row.channel, row.thread_ts)

    # --- plumbing -----------------------------------------------------------------------------

    def _update(self, request_id: str, **values: Any) -> None:
        with self._writing() as session:
            result = session.connection().execute(
                update(RequestRow).where(RequestRow.id == request_id).values(updated_at=utc_now(), **values)
            )
            if result.rowcount == 0:
                raise _no_request(request_id)

    def _request_with_key(self, idempotency_key: str) -> str | None:
        with self._reading() as session:
            return session.scalar(select(RequestRow.id).where(RequestRow.idempotency_key == idempotency_key))

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._unavailable_as_error(), self._reads() as session:
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._unavailable_as_error(), self._writes.begin() as session:
            yield session

    def _unavailable_as_error(self) -> AbstractContextManager[None]:
        return unavailable_as_error(self._url, "try again in a moment, and tell an admin if it persists")

    # --- conversations ------------------------------------------------------------------------
    # (bot/store/conversation_tables.py says why the row looks as it does.)

    def conversation(self, key: ConversationKey) -> ConversationState:
        """Where the conversation stands; a fresh state (turn 0) when none was saved for it yet."""
        with self._reading() as session:
            row = session.get(ConversationRow, (key.door, key.place, key.requester))
            if row is None:
                return ConversationState(key=key)
            return ConversationState(
                key=key,
                draft_request_id=row.draft_request_id,
                partial=row.partial,
                pending_field=row.pending_field,
                texts=tuple(row.texts),
                turn=row.turn,
                updated_at=row.updated_at,
            )

    def save_conversation(self, state: ConversationState) -> bool:
        """Save `state` as the conversation's next turn, unless another answer saved one since
        `state` was read (its `turn` is the one read). True when saved; False when someone else
        (another replica answering the same thread) was first: nothing is overwritten."""
        now, key = utc_now(), state.key
        values: dict[str, Any] = {
            "draft_request_id": state.draft_request_id,
            "partial": state.partial,
            "pending_field": state.pending_field,
            "texts": list(state.texts),
            "updated_at": now,
        }
        try:
            with self._writing() as session:
                connection = session.connection()
                if state.turn == 0:
                    row = ConversationRow
                    return inserted_first(
                        connection,
                        row,
                        [row.door, row.place, row.requester],
                        door=key.door,
                        place=key.place,
                        requester=key.requester,
                        turn=1,
                        created_at=now,
                        **values,
                    )
                saved = connection.execute(
                    update(ConversationRow)
                    .where(
                        ConversationRow.door == key.door,
                        ConversationRow.place == key.place,
                        ConversationRow.requester == key.requester,
                        ConversationRow.turn == state.turn,
                    )
                    .values(turn=state.turn + 1, **values)
                )
                return saved.rowcount == 1
        except IntegrityError as e:  # the draft names no stored request (foreign key)
            raise _no_request(str(state.draft_request_id)) from e

    def settle_open_request(self, request_id: str, outcome: str) -> bool:
        """Set the outcome of a previewed request only while it is still open (`received`, no job):
        a draft superseded or dropped in a conversation at the moment its Submit button is clicked
        must not have its `submitted` outcome overwritten. True when this call settled it."""
        with self._writing() as session:
            settled = session.connection().execute(
                update(RequestRow)
                .where(RequestRow.id == request_id, RequestRow.outcome.in_(OPEN), RequestRow.job_id.is_(None))
                .values(outcome=outcome, updated_at=utc_now())
            )
            return settled.rowcount == 1

    def forget_conversations(self, idle_since: datetime) -> int:
        """Delete conversations nobody spoke in since `idle_since` (their requests stay); how many."""
        with self._writing() as session:
            result = session.connection().execute(
                delete(ConversationRow).where(ConversationRow.updated_at < idle_since)
            )
            return result.rowcount


def _is_job(ref: JobRef) -> ColumnElement[bool]:
    matches = and_(RequestRow.backend == ref.backend, RequestRow.job_id == ref.job_id)
    if ref.cluster is None:
        return matches
    # A ref read back from a scheduler may name its cluster where the submission did not.
    return and_(matches, or_(RequestRow.cluster.is_(None), RequestRow.cluster == ref.cluster))


def _job_sort_key(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (0, job_id)


def _no_request(request_id: str) -> JobNotFound:
    return JobNotFound(
        f"no request {request_id} is recorded; `concierge history` lists your requests and their ids"
    )


def _identity(row: IdentityRow) -> Identity:
    return Identity.model_validate(row, from_attributes=True)


def _record(row: RequestRow) -> RequestRecord:
    """The record, read from the row's columns and its states by field name."""
    return RequestRecord.model_validate(row, from_attributes=True)
