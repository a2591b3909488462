"""Rollout in the server (canary, shadow, rollback) and production monitoring.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
OID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_events"),
    )
    op.create_table(
        "monitor_references",
        sa.Column("dataset_version_id", OID, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("features_oid", OID, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("dataset_version_id", name="pk_monitor_references"),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("dropped", sa.Integer, nullable=False),
        sa.Column("reference_id", OID, nullable=True),
        sa.Column("features_oid", OID, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("drift", sa.JSON, nullable=False),
        sa.Column("drifted", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_windows"),
    )
    op.create_index("ix_monitor_windows_model_version_id", "monitor_windows", ["model_version", "id"])
    op.create_table(
        "monitor_signals",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("window_id", sa.Integer, nullable=True),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_signals"),
        sa.ForeignKeyConstraint(
            ["window_id"], ["monitor_windows.id"], name="fk_monitor_signals_window_id_monitor_windows"
        ),
        sa.UniqueConstraint("key", name="uq_monitor_signals_key"),
    )
    op.create_table(
        "monitor_accuracy",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("n_images", sa.Integer, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_accuracy"),
    )
    op.create_index("ix_monitor_accuracy_model_version", "monitor_accuracy", ["model_version"])


def downgrade() -> None:
    op.drop_index("ix_monitor_accuracy_model_version", table_name="monitor_accuracy")
    op.drop_table("monitor_accuracy")
    op.drop_table("monitor_signals")
    op.drop_index("ix_monitor_windows_model_version_id", table_name="monitor_windows")
    op.drop_table("monitor_windows")
    op.drop_table("monitor_references")
    op.drop_table("rollout_events")
