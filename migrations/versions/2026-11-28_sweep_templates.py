"""sweep templates: a sweep may be a built-in template (paper-table) instead of a factor design

Adds `template` and `template_options` to `sweep` and lets `design` be 'template'.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OLD_DESIGNS = "design IN ('full', 'fractional', 'one_at_a_time')"
NEW_DESIGNS = "design IN ('full', 'fractional', 'one_at_a_time', 'template')"


def upgrade() -> None:
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("template_options", sa.JSON(), nullable=True))
        batch_op.drop_constraint(op.f("ck_sweep_design_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_sweep_design_valid"), NEW_DESIGNS)


def downgrade() -> None:
    # Template sweeps cannot be expressed without these columns: they are removed with them.
    op.execute("DELETE FROM sweep WHERE design = 'template'")
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_sweep_design_valid"), type_="check")
        batch_op.create_check_constraint(op.f("ck_sweep_design_valid"), OLD_DESIGNS)
        batch_op.drop_column("template_options")
        batch_op.drop_column("template")
