"""incidents join the review not yet held; findings on AI systems outside the inventory

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _json_list(name: str) -> sa.Column[Any]:
    # Rows written before hold the records' default ([]), so their audit entries still verify.
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
        nullable=False,
        server_default=sa.text("'[]'"),
    )


def upgrade() -> None:
    with op.batch_alter_table("management_review", schema=None) as batch_op:
        batch_op.add_column(_json_list("triggers"))
        batch_op.add_column(_json_list("pack_triggers"))

    with op.batch_alter_table("nonconformity", schema=None) as batch_op:
        batch_op.add_column(_json_list("controls"))

    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inventory_finding", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("inventory_finding")

    with op.batch_alter_table("nonconformity", schema=None) as batch_op:
        batch_op.drop_column("controls")

    with op.batch_alter_table("management_review", schema=None) as batch_op:
        batch_op.drop_column("pack_triggers")
        batch_op.drop_column("triggers")
