"""Model distribution to apps: signed releases on channels.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("rollout_percent", sa.Integer, nullable=False),
        sa.Column("previous_id", sa.Integer, nullable=True),
        sa.Column("manifest", sa.Text, nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.ForeignKeyConstraint(
            ["model_version"], ["model_versions.version"], name="fk_releases_model_version_model_versions"
        ),
        sa.ForeignKeyConstraint(["previous_id"], ["releases.id"], name="fk_releases_previous_id_releases"),
        sa.UniqueConstraint("channel", "sequence", name="uq_releases_channel_sequence"),
    )


def downgrade() -> None:
    op.drop_table("releases")
