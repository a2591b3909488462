"""Model half: runs, model versions, aliases with their history, evaluations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OID = sa.String(64)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dataset_version_id", OID, nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("environment", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_runs_dataset_version_id_dataset_versions",
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["runs.id"], name="fk_runs_parent_id_runs"),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "model_versions",
        sa.Column("version", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("dataset_version_id", OID, nullable=False),
        sa.Column("architecture", sa.String(64), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("weights_oid", OID, nullable=False),
        sa.Column("classes", sa.JSON, nullable=False),
        sa.Column("imgsz", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("gate_report", sa.JSON, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decision_reason", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs"),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_model_versions_dataset_version_id_dataset_versions",
        ),
    )
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_aliases"),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name="fk_aliases_version_model_versions"
        ),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_events"),
        sa.ForeignKeyConstraint(
            ["version"], ["model_versions.version"], name="fk_alias_events_version_model_versions"
        ),
        sa.ForeignKeyConstraint(
            ["previous_version"],
            ["model_versions.version"],
            name="fk_alias_events_previous_version_model_versions",
        ),
    )
    op.create_index("ix_alias_events_name", "alias_events", ["name"])
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("dataset_version_id", OID, nullable=False),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("artifacts", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name="fk_evaluations_model_version_model_versions"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_evaluations_dataset_version_id_dataset_versions",
        ),
    )
    op.create_index("ix_evaluations_model_version", "evaluations", ["model_version"])


def downgrade() -> None:
    for table in ("evaluations", "alias_events", "aliases", "model_versions", "runs"):
        op.drop_table(table)
