"""run execution bookkeeping: max_attempts, queued_at, task_id, tokens_per_s, eta_at

What the workers and the reaper need: how many attempts a run may use, since when it waits in
the queue (the reaper re-sends runs the broker lost), the Celery task to kill on force-cancel,
and live throughput and ETA for the runs table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 21:56:36.232140
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ADD/DROP COLUMN (SQLite >= 3.35 has both): nothing here needs the copy
    # of the table that batch mode would make.
    op.add_column(
        "run", sa.Column("max_attempts", sa.Integer(), server_default=sa.text("3"), nullable=False)
    )
    op.add_column("run", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("run", sa.Column("task_id", sa.String(length=64), nullable=True))
    op.add_column("run", sa.Column("tokens_per_s", sa.Float(), nullable=True))
    op.add_column("run", sa.Column("eta_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for column in ("eta_at", "tokens_per_s", "task_id", "queued_at", "max_attempts"):
        op.drop_column("run", column)
