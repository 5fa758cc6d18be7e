"""metric points keyed by (run_id, key, step): no surrogate id; WITHOUT ROWID on SQLite

The unique (run_id, key, step) becomes the primary key and the `id` column goes: every read
and the idempotent ingest use that triple, so the extra index and sequence only slowed each
insert and took space. SQLite stores the rows in the key's B-tree (WITHOUT ROWID).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = "run_id, key, step, value, wall_time"


def _points_table(name: str, *, with_id: bool) -> None:
    """The metric_point table as it is before (with_id) or after this revision."""
    columns: list[sa.Column[object] | sa.Constraint] = []
    if with_id:
        columns.append(sa.Column("id", sa.Integer(), nullable=False))
    columns += [
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("wall_time", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_metric_point_run_id_run"), ondelete="CASCADE"
        ),
    ]
    if with_id:
        columns += [
            sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_point")),
            sa.UniqueConstraint(
                "run_id", "key", "step", name=op.f("uq_metric_point_run_id_key_step")
            ),
        ]
    else:
        columns.append(
            sa.PrimaryKeyConstraint("run_id", "key", "step", name=op.f("pk_metric_point"))
        )
    op.create_table(name, *columns, sqlite_with_rowid=with_id)


def _copy_into_new_sqlite_table(*, with_id: bool) -> None:
    # SQLite cannot change a primary key in place: build the new table, copy, swap. The copy
    # leaves `id` out, so a restored id is numbered by SQLite in the old table's order.
    _points_table("_metric_point_new", with_id=with_id)
    op.execute(
        f"INSERT INTO _metric_point_new ({COLUMNS}) SELECT {COLUMNS} FROM metric_point "
        "ORDER BY run_id, key, step"
    )
    op.drop_table("metric_point")
    op.rename_table("_metric_point_new", "metric_point")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_into_new_sqlite_table(with_id=False)
        return
    op.drop_constraint(op.f("uq_metric_point_run_id_key_step"), "metric_point", type_="unique")
    op.drop_constraint(op.f("pk_metric_point"), "metric_point", type_="primary")
    op.drop_column("metric_point", "id")  # its sequence goes with it
    op.create_primary_key(op.f("pk_metric_point"), "metric_point", ["run_id", "key", "step"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _copy_into_new_sqlite_table(with_id=True)
        return
    op.drop_constraint(op.f("pk_metric_point"), "metric_point", type_="primary")
    # SERIAL numbers the existing rows and owns a new metric_point_id_seq, as 0001 made it.
    op.execute("ALTER TABLE metric_point ADD COLUMN id SERIAL NOT NULL")
    op.create_primary_key(op.f("pk_metric_point"), "metric_point", ["id"])
    op.create_unique_constraint(
        op.f("uq_metric_point_run_id_key_step"), "metric_point", ["run_id", "key", "step"]
    )
