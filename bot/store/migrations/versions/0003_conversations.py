"""Conversations: each Slack thread's and CLI chat session's draft, pending question and texts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The key (door, place, requester) is the primary key, so two replicas cannot start the same
conversation twice; `turn` makes every later save a compare-and-set (bot/store/conversation_tables.py).
Types are written out here, as in 0001, so this revision keeps creating the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("door", sa.String(length=32), nullable=False),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("requester", sa.String(length=255), nullable=False),
        sa.Column("draft_request_id", sa.String(length=36), nullable=True),
        sa.Column("partial", _json(), nullable=True),
        sa.Column("pending_field", sa.String(length=64), nullable=True),
        sa.Column("texts", _json(), nullable=False),
        sa.Column("turn", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draft_request_id"],
            ["requests.id"],
            name=op.f("fk_conversations_draft_request_id_requests"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("door", "place", "requester", name=op.f("pk_conversations")),
    )
    op.create_index(
        op.f("ix_conversations_draft_request_id"), "conversations", ["draft_request_id"], unique=False
    )
    op.create_index(op.f("ix_conversations_updated_at"), "conversations", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_updated_at"), table_name="conversations")
    op.drop_index(op.f("ix_conversations_draft_request_id"), table_name="conversations")
    op.drop_table("conversations")
