"""The initial schema: identities, requests, job_states, audit_events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are written out here (not imported from bot.store.tables) so that this revision keeps
creating the same schema whatever the models become later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("requester", sa.String(length=255), nullable=False),
        sa.Column("unix_user", sa.String(length=255), nullable=True),
        sa.Column("k8s_user", sa.String(length=255), nullable=True),
        sa.Column("k8s_groups", _json(), nullable=False),
        sa.Column("default_namespace", sa.String(length=255), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("requester", name=op.f("pk_identities")),
    )

    op.create_table(
        "requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("requester", sa.String(length=255), nullable=False),
        sa.Column("door", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("intent", _json(), nullable=True),
        sa.Column("decision", _json(), nullable=True),
        sa.Column("backend", sa.String(length=16), nullable=True),
        sa.Column("plan", _json(), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("cluster", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_observed_at", _timestamp(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_requests")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_requests_idempotency_key")),
    )
    op.create_index("ix_requests_requester_created_at", "requests", ["requester", "created_at"])
    op.create_index("ix_requests_created_at", "requests", ["created_at"])
    op.create_index("ix_requests_backend_job_id", "requests", ["backend", "job_id"])
    op.create_index("ix_requests_outcome", "requests", ["outcome"])

    op.create_table(
        "job_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("observed_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_job_states_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_states")),
    )
    op.create_index(op.f("ix_job_states_request_id"), "job_states", ["request_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", _timestamp(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("detail", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index("ix_audit_events_subject_at", "audit_events", ["subject", "at"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("job_states")
    op.drop_table("requests")
    op.drop_table("identities")
