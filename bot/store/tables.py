"""The store's tables as typed SQLAlchemy models. Only `bot.store` sees these; callers get records.

Why the columns beyond the obvious ones:
- `requests.state`, `state_reason`, `state_observed_at` hold the last state observed, so that
  recording a transition is one compare-and-set UPDATE (see `Store.record_state`): two trackers
  racing cannot both win it, on SQLite or PostgreSQL, without table locks.
- `requests.gpus` is the planned request's total GPUs, so a person's usage is one SUM.
- `requests.outcome` starts as `received`, so a request whose handling died half-way still shows.

Timestamps go through `UtcDateTime`: PostgreSQL keeps the offset (timestamptz), SQLite keeps none,
so values are stored as UTC and handed back timezone-aware on both. Naive datetimes are refused
rather than guessed at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, Index, MetaData, String, Text, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing a naive datetime ({value.isoformat()}): pass a timezone-aware one")
        in_utc = value.astimezone(UTC)
        return in_utc if dialect.name == "postgresql" else in_utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")

# Named constraints, so a later migration can drop or alter them by name on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        dict[str, Any]: JsonDocument,
        list[str]: JsonDocument,
    }


class IdentityRow(Base):
    __tablename__ = "identities"

    requester: Mapped[str] = mapped_column(String(255), primary_key=True)
    unix_user: Mapped[str | None] = mapped_column(String(255))
    k8s_user: Mapped[str | None] = mapped_column(String(255))
    k8s_groups: Mapped[list[str]]
    default_namespace: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RequestRow(Base):
    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_requester_created_at", "requester", "created_at"),
        Index("ix_requests_created_at", "created_at"),
        Index("ix_requests_backend_job_id", "backend", "job_id"),
        Index("ix_requests_outcome", "outcome"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    requester: Mapped[str] = mapped_column(String(255))
    door: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[dict[str, Any] | None]
    decision: Mapped[dict[str, Any] | None]
    backend: Mapped[str | None] = mapped_column(String(16))
    plan: Mapped[dict[str, Any] | None]
    gpus: Mapped[int | None]
    job_id: Mapped[str | None] = mapped_column(String(255))
    cluster: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(String(32))
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_observed_at: Mapped[datetime | None]
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    states: Mapped[list[StateRow]] = relationship(
        order_by=lambda: (StateRow.observed_at, StateRow.id),
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class StateRow(Base):
    """One row per observed transition of a job's (state, reason)."""

    __tablename__ = "job_states"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(255))
    backend: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime]
    ending: Mapped[dict[str, Any] | None]  # a backends.types.JobEnding, for the state a job ended in


class ClaimRow(Base):
    """A once-only claim: the first caller to insert a key is the one that acts (migration 0007)."""

    __tablename__ = "claims"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    claimed_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject_at", "subject", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any] | None]


class SlackThreadRow(Base):
    """Where a request's job updates are posted in Slack; `thread_ts` is None until anchored."""

    __tablename__ = "slack_threads"

    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    # The last job_states row posted (or being posted, or given up) here; None: none yet.
    posted_state_id: Mapped[int | None]
    failed_posts: Mapped[int] = mapped_column(default=0, server_default="0")  # tries of the next one


# Later features keep their tables in their own modules; importing them here puts them on
# Base.metadata for migrations and their comparison test. (At the end: they import Base from here.)
from bot.store import conversation_tables, schedule_tables, telemetry_tables  # noqa: E402, F401
