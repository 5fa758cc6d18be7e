"""run seed as a 64-bit integer

RunConfig seeds go up to 2^32 - 1, past PostgreSQL's 32-bit INTEGER. The downgrade narrows the
column again (it fails on PostgreSQL if a stored seed no longer fits, which is the point).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 22:39:39.286185
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.alter_column(
            "seed", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.alter_column(
            "seed", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
