"""metric points without a foreign key to run: a trigger deletes a run's points instead

The foreign key was checked once per inserted point: on PostgreSQL a lookup and a key-share lock
of the run row for every point, about half the cost of a 1,000-point batch (3.7 ms of 7.5 ms
measured here). A point still cannot be stored for a missing run: the ingest statement that
inserts a batch also folds it into `metric_latest`, whose foreign key to `run` is checked once
per key, and a failure there undoes the whole batch. Deleting a run still deletes its points,
by an AFTER DELETE trigger on `run` (one statement per deleted run, nothing on insert).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FK_NAME = "fk_metric_point_run_id_run"
TRIGGER = "run_deletes_metric_points"
COLUMNS = "run_id, key, step, value, wall_time"

PG_FUNCTION = f"""
CREATE FUNCTION {TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metric_point WHERE run_id = OLD.id;
    RETURN OLD;
END
$$
"""
PG_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON run FOR EACH ROW EXECUTE FUNCTION {TRIGGER}()"
)
SQLITE_TRIGGER = (
    f"CREATE TRIGGER {TRIGGER} AFTER DELETE ON run FOR EACH ROW "
    "BEGIN DELETE FROM metric_point WHERE run_id = OLD.id; END"
)


def _sqlite_points_table(*, foreign_key: bool) -> None:
    # SQLite cannot drop or add a foreign key in place: build the table anew, copy, swap.
    constraints: list[sa.Constraint] = [
        sa.PrimaryKeyConstraint("run_id", "key", "step", name=op.f("pk_metric_point"))
    ]
    if foreign_key:
        constraints.append(
            sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f(FK_NAME), ondelete="CASCADE")
        )
    op.create_table(
        "_metric_point_new",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("wall_time", sa.Float(), nullable=False),
        *constraints,
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO _metric_point_new ({COLUMNS}) SELECT {COLUMNS} FROM metric_point "
        "ORDER BY run_id, key, step"
    )
    op.drop_table("metric_point")
    op.rename_table("_metric_point_new", "metric_point")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_points_table(foreign_key=False)
        op.execute(SQLITE_TRIGGER)
        return
    op.drop_constraint(op.f(FK_NAME), "metric_point", type_="foreignkey")
    op.execute(PG_FUNCTION)
    op.execute(PG_TRIGGER)


def downgrade() -> None:
    # Points whose run is gone could not satisfy the foreign key again (none should exist).
    op.execute("DELETE FROM metric_point WHERE run_id NOT IN (SELECT id FROM run)")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP TRIGGER {TRIGGER}")
        _sqlite_points_table(foreign_key=True)
        return
    op.execute(f"DROP TRIGGER {TRIGGER} ON run")
    op.execute(f"DROP FUNCTION {TRIGGER}()")
    op.create_foreign_key(
        op.f(FK_NAME), "metric_point", "run", ["run_id"], ["id"], ondelete="CASCADE"
    )
