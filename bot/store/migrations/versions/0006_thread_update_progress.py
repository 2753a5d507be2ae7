"""How far each Slack thread's job updates have been posted, so a restart forgets no retry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

`posted_state_id` is the last `job_states` row posted (or claimed, or given up) in the thread;
`failed_posts` counts the failed tries of the next one. Threads that exist already start as
posted up to their latest state: nothing old is posted again after the upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_threads") as batch:
        batch.add_column(sa.Column("posted_state_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("failed_posts", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE slack_threads SET posted_state_id = "
        "(SELECT max(job_states.id) FROM job_states WHERE job_states.request_id = slack_threads.request_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("slack_threads") as batch:
        batch.drop_column("failed_posts")
        batch.drop_column("posted_state_id")
