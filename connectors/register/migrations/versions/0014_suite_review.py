"""suite reviews: the reminder to review a drafted baseline suite, and who accepted it, when

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suite_review",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("suite_version", sa.Text(), nullable=False),
        sa.Column("suite_sha256", sa.Text(), nullable=True),
        sa.Column("reviewed_version", sa.Text(), nullable=True),
        sa.Column("by", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("credential", sa.Text(), nullable=True),
        sa.Column("authenticated", sa.Boolean(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suite_review")),
    )
    with op.batch_alter_table("suite_review", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_suite_review_dataset"), ["dataset"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("suite_review", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_suite_review_dataset"))
    op.drop_table("suite_review")
