"""Where each Slack-submitted request's job updates go: the channel and the thread's parent ts.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

One row per request (the primary key), so two replicas remembering the same thread cannot both
win. `thread_ts` is empty until a message to thread under exists: a click on an ephemeral preview
gives a channel but no message that can hold a thread.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_threads",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_slack_threads_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_slack_threads")),
    )


def downgrade() -> None:
    op.drop_table("slack_threads")
