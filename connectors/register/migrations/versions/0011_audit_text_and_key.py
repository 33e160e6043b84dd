"""audit entries keep before/after as RFC 8785 text and may be keyed (HMAC) from a recorded seq

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only new, nullable columns: rows written before keep their JSON before/after and their
    # encoding NULL, so they verify with the hash they were written with (legacy SHA-256).
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encoding", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("before_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("after_text", sa.Text(), nullable=True))
    # NULL: no entry is keyed yet; the first write with the audit key sets it to its own seq.
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keyed_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("keyed_from")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("after_text")
        batch_op.drop_column("before_text")
        batch_op.drop_column("encoding")
