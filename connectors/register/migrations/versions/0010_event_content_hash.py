"""receipts keep the content hash of the event they record, to tell a conflicting duplicate

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: receipts written before hold the record's default (None), so their audit entries verify.
    with op.batch_alter_table("event_received", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_received", schema=None) as batch_op:
        batch_op.drop_column("content_hash")
