"""incident response: triage, clocks, updates, notices

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_notice",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column(
            "recipients",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_notice")),
    )
    with op.batch_alter_table("incident_notice", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_notice_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_update",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("incident_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("action_id", sa.Text(), nullable=True),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("refusal", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_update")),
    )
    with op.batch_alter_table("incident_update", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_update_incident_id"), ["incident_id"], unique=False)

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reported_severity", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("triaged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("contained_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("reported_to_authority_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("slack_channel", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("slack_ts", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("jira_issue", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("flow_run_id", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_incident_status"), ["status"], unique=False)

    with op.batch_alter_table("nonconformity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_nonconformity_source_ref"), ["source_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("nonconformity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nonconformity_source_ref"))

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_status"))
        batch_op.drop_column("flow_run_id")
        batch_op.drop_column("jira_issue")
        batch_op.drop_column("slack_ts")
        batch_op.drop_column("slack_channel")
        batch_op.drop_column("reported_to_authority_at")
        batch_op.drop_column("contained_at")
        batch_op.drop_column("triaged_at")
        batch_op.drop_column("reported_severity")

    with op.batch_alter_table("incident_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_update_incident_id"))

    op.drop_table("incident_update")
    with op.batch_alter_table("incident_notice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_notice_incident_id"))

    op.drop_table("incident_notice")
