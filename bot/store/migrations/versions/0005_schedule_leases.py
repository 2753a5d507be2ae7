"""The schedule's leader lease, posted digest periods and idle-GPU nudges; see bot/store/schedule_tables.py.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

`schedule_runs` is keyed by (digest key, period start), so one period can be claimed once;
`gpu_nudges` by (backend, job id). APScheduler's `apscheduler_jobs` is created by its job store,
not here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedule_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("acquired_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_schedule_leases")),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("period_start", _timestamp(), nullable=False),
        sa.Column("period_end", _timestamp(), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", _timestamp(), nullable=False),
        sa.Column("posted_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("key", "period_start", name=op.f("pk_schedule_runs")),
    )
    op.create_table(
        "gpu_nudges",
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("last_nudged_at", _timestamp(), nullable=True),
        sa.Column("kept_until", _timestamp(), nullable=True),
        sa.Column("nudges", sa.Integer(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("backend", "job_id", name=op.f("pk_gpu_nudges")),
    )


def downgrade() -> None:
    op.drop_table("gpu_nudges")
    op.drop_table("schedule_runs")
    op.drop_table("schedule_leases")
