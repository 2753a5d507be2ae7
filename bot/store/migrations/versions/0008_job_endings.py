"""How each ended job ended (exit code or signal, output file, the scheduler's message), kept with
the state it ended in, so `status`, `history` and the Slack thread still say it after the scheduler
has forgotten the job.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("job_states") as batch:
        batch.add_column(sa.Column("ending", document, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_states") as batch:
        batch.drop_column("ending")
