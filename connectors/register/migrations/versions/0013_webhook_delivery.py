"""webhook deliveries from the model registry (MLflow), once per delivery id

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "webhook_delivery",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("ai_system", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        _json("reasons"),
        _json("notes"),
        _json("data"),
        sa.Column("event_key", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_webhook_delivery")),
    )
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_delivery_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_delivery_outcome"), ["outcome"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_outcome"))
        batch_op.drop_index(batch_op.f("ix_webhook_delivery_subject"))
    op.drop_table("webhook_delivery")
