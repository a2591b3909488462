"""Initial schema: classes, images, imports, labels, items, dataset versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

OID = sa.String(64)
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "classes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_classes"),
        sa.UniqueConstraint("name", name="uq_classes_name"),
    )
    op.create_table(
        "images",
        sa.Column("oid", OID, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("orientation", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("oid", name="pk_images"),
    )
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("report_oid", OID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_imports"),
    )
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("image_oid", OID, nullable=False),
        sa.Column("oid", OID, nullable=False),
        sa.Column("boxes", sa.Text, nullable=False),
        sa.Column("n_boxes", sa.Integer, nullable=False),
        sa.Column("origin", sa.String(100), nullable=False),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        sa.ForeignKeyConstraint(["image_oid"], ["images.oid"], name="fk_labels_image_oid_images"),
        sa.ForeignKeyConstraint(["parent_id"], ["labels.id"], name="fk_labels_parent_id_labels"),
    )
    op.create_index("ix_labels_image_oid", "labels", ["image_oid"])
    op.create_index("ix_labels_oid", "labels", ["oid"])
    op.create_table(
        "items",
        sa.Column("image_oid", OID, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("labels_id", sa.Integer, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_split", sa.String(16), nullable=True),
        sa.Column("import_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("image_oid", name="pk_items"),
        sa.ForeignKeyConstraint(["image_oid"], ["images.oid"], name="fk_items_image_oid_images"),
        sa.ForeignKeyConstraint(["labels_id"], ["labels.id"], name="fk_items_labels_id_labels"),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"], name="fk_items_import_id_imports"),
    )
    op.create_index("ix_items_status", "items", ["status"])
    op.create_table(
        "dataset_versions",
        sa.Column("id", OID, nullable=False),
        sa.Column("parent_id", OID, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("manifest_oid", OID, nullable=False),
        sa.Column("n_images", sa.Integer, nullable=False),
        sa.Column("n_boxes", sa.Integer, nullable=False),
        sa.Column("stats", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["dataset_versions.id"], name="fk_dataset_versions_parent_id_dataset_versions"
        ),
    )
    op.create_index("ix_dataset_versions_created_at", "dataset_versions", ["created_at"])


def downgrade() -> None:
    for table in ("dataset_versions", "items", "labels", "imports", "images", "classes"):
        op.drop_table(table)
