"""management review: pack files, results, interested parties

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interested_party_need",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("party", sa.Text(), nullable=False),
        sa.Column("need", sa.Text(), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interested_party_need")),
    )
    with op.batch_alter_table("interested_party_need", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interested_party_need_recorded_at"), ["recorded_at"], unique=False
        )

    op.create_table(
        "review_result",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("review_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("action_id", sa.Text(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_result")),
    )
    with op.batch_alter_table("review_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_result_review_id"), ["review_id"], unique=False)

    with op.batch_alter_table("management_review", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "policy",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(
            sa.Column(
                "files",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )
        batch_op.add_column(sa.Column("jira_issue", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("flow_run_id", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("prepared_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("review_action", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recorded_by", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("closed_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_action", schema=None) as batch_op:
        batch_op.drop_column("closed_by")
        batch_op.drop_column("recorded_at")
        batch_op.drop_column("recorded_by")

    with op.batch_alter_table("management_review", schema=None) as batch_op:
        batch_op.drop_column("closed_at")
        batch_op.drop_column("prepared_at")
        batch_op.drop_column("flow_run_id")
        batch_op.drop_column("jira_issue")
        batch_op.drop_column("files")
        batch_op.drop_column("policy")
        batch_op.drop_column("requested_by")
        batch_op.drop_column("trigger")

    with op.batch_alter_table("review_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_result_review_id"))

    op.drop_table("review_result")
    with op.batch_alter_table("interested_party_need", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interested_party_need_recorded_at"))

    op.drop_table("interested_party_need")
