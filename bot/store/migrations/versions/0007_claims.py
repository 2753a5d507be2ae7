"""Once-only claims in a table of their own (a Slack click, an approval, a decision).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

A claim was a request row recognised by a token in its text; now it is one row per key, taken
with INSERT … ON CONFLICT DO NOTHING, and claims no longer show among a person's requests. Old
claim rows (`slack-approval-*`, `slack-submit:*`, `slack-event:*` idempotency keys) are copied over so nothing decided is decided
again, then removed from `requests`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_CLAIMS = (
    "idempotency_key LIKE 'slack-approval-%' OR idempotency_key LIKE 'slack-submit:%' "
    "OR idempotency_key LIKE 'slack-event:%'"
)


def upgrade() -> None:
    op.create_table(
        "claims",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_claims")),
    )
    op.execute(
        "INSERT INTO claims (key, actor, claimed_at) "
        f"SELECT idempotency_key, requester, created_at FROM requests WHERE {_OLD_CLAIMS}"
    )
    op.execute(f"DELETE FROM requests WHERE {_OLD_CLAIMS}")


def downgrade() -> None:
    op.drop_table("claims")
