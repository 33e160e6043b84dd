"""approval decisions keep what the channel proved about who decided, and whether it proved anyone

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: decisions recorded before hold the record's default (None), so their audit entries verify.
    with op.batch_alter_table("approval_decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("credential", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("authenticated", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_decision", schema=None) as batch_op:
        batch_op.drop_column("authenticated")
        batch_op.drop_column("credential")
