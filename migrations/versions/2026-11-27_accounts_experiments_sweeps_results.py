"""accounts, tokens, experiments, sweeps, metric_latest, evaluations, artifacts, run events

Also adds to `run`: experiment, sweep, owner, lineage, the five component flags, gpus, code
version, library versions, notes and soft deletion; and the `run_tag` table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 21:53:10.168555
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'member', 'viewer')", name=op.f("ck_user_role_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
        sa.UniqueConstraint("email", name=op.f("uq_user_email")),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_api_token_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_prefix"), ["prefix"], unique=False)
        batch_op.create_index(batch_op.f("ix_api_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "experiment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_experiment_owner_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment")),
        sa.UniqueConstraint("name", name=op.f("uq_experiment_name")),
    )
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "experiment_member",
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "role IN ('owner', 'editor', 'viewer')", name=op.f("ck_experiment_member_role_valid")
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_experiment_member_experiment_id_experiment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_experiment_member_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "user_id", name=op.f("pk_experiment_member")),
    )
    with op.batch_alter_table("experiment_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiment_member_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sweep",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("design", sa.String(length=32), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=True),
        sa.Column("base_preset", sa.String(length=64), nullable=True),
        sa.Column("base_config", sa.JSON(), nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("seeds", sa.JSON(), nullable=False),
        sa.Column("design_table", sa.JSON(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("estimated_gpu_hours", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "design IN ('full', 'fractional', 'one_at_a_time')", name=op.f("ck_sweep_design_valid")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user.id"], name=op.f("fk_sweep_created_by_user"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiment.id"],
            name=op.f("fk_sweep_experiment_id_experiment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweep")),
    )
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sweep_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweep_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_sweep_experiment_id"), ["experiment_id"], unique=False)

    op.create_table(
        "artifact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("uri", sa.String(length=2000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('checkpoint', 'adapter', 'eval_report', 'log', 'samples', 'traceback', "
            "'other')",
            name=op.f("ck_artifact_kind_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_artifact_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifact")),
        sa.UniqueConstraint("run_id", "name", name=op.f("uq_artifact_run_id_name")),
    )
    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_artifact_run_id"), ["run_id"], unique=False)

    op.create_table(
        "evaluation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("benchmark", sa.String(length=64), nullable=False),
        sa.Column("split", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=True),
        sa.Column("details_artifact", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_evaluation_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation")),
        sa.UniqueConstraint(
            "run_id",
            "benchmark",
            "metric",
            "split",
            name=op.f("uq_evaluation_run_id_benchmark_metric_split"),
        ),
    )
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evaluation_benchmark"), ["benchmark"], unique=False)
        batch_op.create_index(batch_op.f("ix_evaluation_run_id"), ["run_id"], unique=False)

    op.create_table(
        "metric_latest",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("wall_time", sa.Float(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_metric_latest_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "key", name=op.f("pk_metric_latest")),
    )
    op.create_table(
        "run_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "level IN ('debug', 'info', 'warning', 'error')", name=op.f("ck_run_event_level_valid")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_run_event_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_event")),
    )
    with op.batch_alter_table("run_event", schema=None) as batch_op:
        batch_op.create_index("ix_run_event_run_id_id", ["run_id", "id"], unique=False)

    op.create_table(
        "run_tag",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_run_tag_run_id_run"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_id", "tag", name=op.f("pk_run_tag")),
    )
    with op.batch_alter_table("run_tag", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_tag_tag"), ["tag"], unique=False)

    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("experiment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("design_point", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("agreement", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("ema", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("contrastive", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("feature_matching", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("clipping", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("gpus", sa.Integer(), server_default=sa.text("1"), nullable=False)
        )
        batch_op.add_column(sa.Column("code_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("env", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_run_agreement"), ["agreement"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_clipping"), ["clipping"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_contrastive"), ["contrastive"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_created_by"), ["created_by"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_deleted_at"), ["deleted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_ema"), ["ema"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_experiment_id"), ["experiment_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_run_feature_matching"), ["feature_matching"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_run_parent_run_id"), ["parent_run_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_run_sweep_id"), ["sweep_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_run_experiment_id_experiment"),
            "experiment",
            ["experiment_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_run_parent_run_id_run"),
            "run",
            ["parent_run_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_run_created_by_user"),
            "user",
            ["created_by"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_run_sweep_id_sweep"), "sweep", ["sweep_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_run_sweep_id_sweep"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_run_created_by_user"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_run_parent_run_id_run"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_run_experiment_id_experiment"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_run_sweep_id"))
        batch_op.drop_index(batch_op.f("ix_run_parent_run_id"))
        batch_op.drop_index(batch_op.f("ix_run_feature_matching"))
        batch_op.drop_index(batch_op.f("ix_run_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_run_ema"))
        batch_op.drop_index(batch_op.f("ix_run_deleted_at"))
        batch_op.drop_index(batch_op.f("ix_run_created_by"))
        batch_op.drop_index(batch_op.f("ix_run_contrastive"))
        batch_op.drop_index(batch_op.f("ix_run_clipping"))
        batch_op.drop_index(batch_op.f("ix_run_agreement"))
        batch_op.drop_column("deleted_at")
        batch_op.drop_column("notes")
        batch_op.drop_column("env")
        batch_op.drop_column("code_version")
        batch_op.drop_column("gpus")
        batch_op.drop_column("clipping")
        batch_op.drop_column("feature_matching")
        batch_op.drop_column("contrastive")
        batch_op.drop_column("ema")
        batch_op.drop_column("agreement")
        batch_op.drop_column("parent_run_id")
        batch_op.drop_column("created_by")
        batch_op.drop_column("design_point")
        batch_op.drop_column("sweep_id")
        batch_op.drop_column("experiment_id")

    with op.batch_alter_table("run_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_tag_tag"))

    op.drop_table("run_tag")
    with op.batch_alter_table("run_event", schema=None) as batch_op:
        batch_op.drop_index("ix_run_event_run_id_id")

    op.drop_table("run_event")
    op.drop_table("metric_latest")
    with op.batch_alter_table("evaluation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluation_run_id"))
        batch_op.drop_index(batch_op.f("ix_evaluation_benchmark"))

    op.drop_table("evaluation")
    with op.batch_alter_table("artifact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_artifact_run_id"))

    op.drop_table("artifact")
    with op.batch_alter_table("sweep", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sweep_experiment_id"))
        batch_op.drop_index(batch_op.f("ix_sweep_created_by"))
        batch_op.drop_index(batch_op.f("ix_sweep_created_at"))

    op.drop_table("sweep")
    with op.batch_alter_table("experiment_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_member_user_id"))

    op.drop_table("experiment_member")
    with op.batch_alter_table("experiment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_owner_id"))

    op.drop_table("experiment")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_user_id"))
        batch_op.drop_index(batch_op.f("ix_api_token_prefix"))

    op.drop_table("api_token")
    op.drop_table("user")
