"""GPU use rolled up per minute (gpu_minutes) and per hour (gpu_hours); see bot/store/telemetry_tables.py.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

The two tables have the same columns. Their primary key starts with the bucket's start so that
reading a period and pruning old buckets are key ranges; on SQLite they are WITHOUT ROWID, so the
key is the table (one B-tree to write, not two).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("gpu_minutes", "gpu_hours")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("gpu", sa.String(length=32), nullable=False),
        sa.Column("holder_backend", sa.String(length=16), nullable=False),
        sa.Column("holder_job_id", sa.String(length=255), nullable=False),
        sa.Column("holder_owner", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("mig_profile", sa.String(length=32), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("util_samples", sa.Integer(), nullable=False),
        sa.Column("util_sum", sa.Double(), nullable=False),
        sa.Column("util_min", sa.Double(), nullable=True),
        sa.Column("util_max", sa.Double(), nullable=True),
        sa.Column("memory_samples", sa.Integer(), nullable=False),
        sa.Column("memory_used_sum", sa.Double(), nullable=False),
        sa.Column("memory_used_max", sa.Double(), nullable=True),
        sa.Column("memory_total", sa.Double(), nullable=True),
        sa.Column("power_samples", sa.Integer(), nullable=False),
        sa.Column("power_sum", sa.Double(), nullable=False),
        sa.Column("power_max", sa.Double(), nullable=True),
    ]


def upgrade() -> None:
    for table in TABLES:
        op.create_table(
            table,
            *_columns(),
            sa.PrimaryKeyConstraint(
                "bucket_start", "host", "gpu", "holder_backend", "holder_job_id", name=op.f(f"pk_{table}")
            ),
            sqlite_with_rowid=False,
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
