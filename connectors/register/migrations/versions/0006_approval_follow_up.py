"""approval follow-up: where requests were posted, escalations and notices

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_notice",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("approval_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column(
            "recipients",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_notice")),
    )
    with op.batch_alter_table("approval_notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_notice_approval_id"), ["approval_id"], unique=False)

    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_channel", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("slack_ts", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("jira_issue", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "escalated_to",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_column("escalated_to")
        batch_op.drop_column("jira_issue")
        batch_op.drop_column("slack_ts")
        batch_op.drop_column("slack_channel")

    with op.batch_alter_table("approval_notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_notice_approval_id"))

    op.drop_table("approval_notice")
