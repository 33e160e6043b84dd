"""fresh evidence: when each piece of evidence was collected and until when it is valid; the requests
for evidence that went stale

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(
        name, sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=False
    )


def upgrade() -> None:
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "evidence_request",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("control", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        _json("collections"),
        _json("asked"),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_request")),
    )
    with op.batch_alter_table("evidence_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_request_control"), ["control"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_request_control"))
    op.drop_table("evidence_request")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_column("valid_until")
        batch_op.drop_column("collected_at")
