"""The schedule's memory: the leader lease, digest periods claimed, idle-GPU nudges and their Keep.

Every decision that two replicas (or a replica and its restarted self) could both make is one
statement whose WHERE clause or primary key lets exactly one of them win, as in `Store`:
- the lease: renew `WHERE holder = me`, take over `WHERE expires_at <= now`, or be the first
  to INSERT … ON CONFLICT DO NOTHING. On PostgreSQL a second UPDATE waits for the first's row
  lock and re-checks its WHERE against the committed row; on SQLite writers are serialised by
  BEGIN IMMEDIATE. No SELECT … FOR UPDATE (SQLite has none) and no retry loop.
- a digest period: the INSERT of its (key, period start) row, which is the primary key.
- a nudge: an UPDATE guarded by the cooldown, the Keep, and the last-nudged time read in the
  same transaction (a compare-and-set), so a failed delivery can hand its claim back exactly.

Times come from the caller's clock, never the database's, so tests can move time; replicas are
expected to keep their clocks in step (NTP) well within a lease's length.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, and_, delete, insert, or_, select, tuple_, update

from bot.store.database import conflict_insert, connected, inserted_first
from bot.store.schedule_tables import GpuNudgeRow, ScheduledRunRow, ScheduleLeaseRow
from bot.store.tables import AuditRow, IdentityRow, RequestRow

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    expires_at: datetime
    acquired_at: datetime


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    key: str
    period_start: datetime
    period_end: datetime
    holder: str
    claimed_at: datetime
    posted_at: datetime | None


@dataclass(frozen=True, slots=True)
class NudgeRecord:
    backend: str
    job_id: str
    owner: str
    last_nudged_at: datetime | None
    kept_until: datetime | None
    nudges: int


@dataclass(frozen=True, slots=True)
class NudgeClaim:
    """A nudge this caller may deliver; `release_nudge` hands it back if delivery failed."""

    backend: str
    job_id: str
    at: datetime
    previous: datetime | None  # the last nudge before this one


_THEN = "the schedule tries again at its next run"


class ScheduleStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = conflict_insert(engine)

    # --- the leader lease ---------------------------------------------------------------------

    def hold_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Renew the lease if `holder` has it, take it over if it expired, or create it; True
        when `holder` leads until `now + ttl`."""
        expires = now + ttl
        lease = ScheduleLeaseRow
        with self._writing() as connection:
            renewed = connection.execute(
                update(lease).where(lease.name == name, lease.holder == holder).values(expires_at=expires)
            )
            if renewed.rowcount == 1:
                return True
            taken = connection.execute(
                update(lease)
                .where(lease.name == name, lease.expires_at <= now)
                .values(holder=holder, expires_at=expires, acquired_at=now)
            )
            if taken.rowcount == 1:
                return True
            return inserted_first(
                connection, lease, [lease.name], name=name, holder=holder, expires_at=expires, acquired_at=now
            )

    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        """Let another replica take over at once (a clean shutdown), if `holder` still leads."""
        lease = ScheduleLeaseRow
        with self._writing() as connection:
            connection.execute(
                update(lease).where(lease.name == name, lease.holder == holder).values(expires_at=now)
            )

    def lease(self, name: str) -> Lease | None:
        with self._reading() as connection:
            row = connection.execute(select(ScheduleLeaseRow).where(ScheduleLeaseRow.name == name)).first()
        if row is None:
            return None
        return _record(Lease, row)

    # --- digest periods -----------------------------------------------------------------------

    def claim_run(
        self, key: str, period_start: datetime, period_end: datetime, holder: str, now: datetime
    ) -> bool:
        """True for the one caller that may post this period of this digest."""
        run = ScheduledRunRow
        with self._writing() as connection:
            return inserted_first(
                connection,
                run,
                [run.key, run.period_start],
                key=key,
                period_start=period_start,
                period_end=period_end,
                holder=holder,
                claimed_at=now,
                posted_at=None,
            )

    def mark_posted(self, key: str, period_start: datetime, now: datetime) -> None:
        run = ScheduledRunRow
        with self._writing() as connection:
            connection.execute(
                update(run).where(run.key == key, run.period_start == period_start).values(posted_at=now)
            )

    def release_run(self, key: str, period_start: datetime, holder: str) -> None:
        """Forget a claim whose post failed, so a later run (a retry, a restart) may post it."""
        run = ScheduledRunRow
        with self._writing() as connection:
            connection.execute(
                delete(run).where(
                    run.key == key,
                    run.period_start == period_start,
                    run.holder == holder,
                    run.posted_at.is_(None),
                )
            )

    def runs(self, key: str) -> list[ScheduledRun]:
        """The periods of one digest that were claimed, oldest first."""
        run = ScheduledRunRow
        with self._reading() as connection:
            rows = connection.execute(select(run).where(run.key == key).order_by(run.period_start)).all()
        return [_record(ScheduledRun, row) for row in rows]

    # --- idle-GPU nudges ----------------------------------------------------------------------

    def claim_nudge(
        self, backend: str, job_id: str, owner: str, now: datetime, cooldown: timedelta
    ) -> NudgeClaim | None:
        """A claim to nudge this job's owner now, or None while its cooldown or Keep lasts."""
        nudge = GpuNudgeRow
        with self._writing() as connection:
            if inserted_first(
                connection,
                nudge,
                [nudge.backend, nudge.job_id],
                backend=backend,
                job_id=job_id,
                owner=owner,
                last_nudged_at=now,
                kept_until=None,
                nudges=1,
                updated_at=now,
            ):
                return NudgeClaim(backend, job_id, now, None)
            previous = connection.execute(
                select(nudge.last_nudged_at).where(_is_nudge(backend, job_id))
            ).scalar_one()
            claimed = connection.execute(
                update(nudge)
                .where(
                    _is_nudge(backend, job_id),
                    nudge.last_nudged_at.is_not_distinct_from(previous),
                    or_(nudge.last_nudged_at.is_(None), nudge.last_nudged_at <= now - cooldown),
                    or_(nudge.kept_until.is_(None), nudge.kept_until <= now),
                )
                .values(last_nudged_at=now, owner=owner, nudges=nudge.nudges + 1, updated_at=now)
            )
            return NudgeClaim(backend, job_id, now, previous) if claimed.rowcount == 1 else None

    def release_nudge(self, claim: NudgeClaim) -> None:
        """A nudge that was not delivered does not count: the last nudge is what it was before."""
        nudge = GpuNudgeRow
        with self._writing() as connection:
            connection.execute(
                update(nudge)
                .where(_is_nudge(claim.backend, claim.job_id), nudge.last_nudged_at == claim.at)
                .values(last_nudged_at=claim.previous, nudges=nudge.nudges - 1, updated_at=claim.at)
            )

    def keep(self, backend: str, job_id: str, owner: str, until: datetime, now: datetime, *, by: str) -> None:
        """The owner wants the job left alone: no nudge about it before `until`; audited as `by`'s."""
        nudge = GpuNudgeRow
        statement = (
            self._insert(nudge)
            .values(
                backend=backend,
                job_id=job_id,
                owner=owner,
                last_nudged_at=None,
                kept_until=until,
                nudges=0,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[nudge.backend, nudge.job_id], set_={"kept_until": until, "updated_at": now}
            )
        )
        kept = {"until": until.isoformat()}
        audit = insert(AuditRow).values(at=now, actor=by, action="keep_idle_job", subject=job_id, detail=kept)
        with self._writing() as connection:
            connection.execute(statement)
            connection.execute(audit)

    def nudge_record(self, backend: str, job_id: str) -> NudgeRecord | None:
        found = self.nudge_records([(backend, job_id)])
        return found.get((backend, job_id))

    def nudge_records(self, jobs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], NudgeRecord]:
        """The nudge rows of these (backend, job id) pairs, by pair; jobs never nudged are absent."""
        keys = list(dict.fromkeys(jobs))
        if not keys:
            return {}
        nudge = GpuNudgeRow
        with self._reading() as connection:
            rows = connection.execute(
                select(nudge).where(tuple_(nudge.backend, nudge.job_id).in_(keys))
            ).all()
        return {(row.backend, row.job_id): _record(NudgeRecord, row) for row in rows}

    # --- who to tell --------------------------------------------------------------------------

    def requester_of_job(self, backend: str, job_id: str) -> str | None:
        """Who asked for this job through the concierge (the newest request, as job ids are reused)."""
        request = RequestRow
        with self._reading() as connection:
            found = connection.execute(
                select(request.requester)
                .where(request.backend == backend, request.job_id == job_id)
                .order_by(request.created_at.desc(), request.id.desc())
                .limit(1)
            ).scalar()
        return None if found is None else str(found)

    def requesters_mapped_to(self, backend: str, cluster_user: str) -> list[str]:
        """The people (door ids) mapped to this cluster user: Unix user on Slurm, Kubernetes user on k8s."""
        identity = IdentityRow
        column = identity.k8s_user if backend == "k8s" else identity.unix_user
        with self._reading() as connection:
            found = connection.execute(
                select(identity.requester).where(column == cluster_user).order_by(identity.requester)
            ).scalars()
            return [str(requester) for requester in found]

    # --- plumbing -----------------------------------------------------------------------------

    def _reading(self) -> AbstractContextManager[Connection]:
        return connected(self._engine, _THEN)

    def _writing(self) -> AbstractContextManager[Connection]:
        return connected(self._engine, _THEN, write=True)


def _record(kind: type[R], row: Any) -> R:
    """The record `kind` from a row that has a column for each of its fields, by name."""
    return kind(**{field.name: getattr(row, field.name) for field in fields(kind)})


def _is_nudge(backend: str, job_id: str) -> ColumnElement[bool]:
    return and_(GpuNudgeRow.backend == backend, GpuNudgeRow.job_id == job_id)
