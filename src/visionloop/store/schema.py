"""Tables of the metadata database (SQLAlchemy Core).

Migrations in ``store/migrations`` create exactly these; a test checks that the
migrated schema and this metadata agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

OID = String(64)

classes = Table(
    "classes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

images = Table(
    "images",
    metadata,
    Column("oid", OID, primary_key=True),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("format", String(16), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("orientation", Integer, nullable=False, default=1),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("counts", JSON, nullable=False),
    Column("report_oid", OID, nullable=True),
)

labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_oid", OID, ForeignKey("images.oid"), nullable=False, index=True),
    # sha256 of the canonical boxes JSON: equal boxes, equal oid.
    Column("oid", OID, nullable=False, index=True),
    Column("boxes", Text, nullable=False),
    Column("n_boxes", Integer, nullable=False),
    Column("origin", String(100), nullable=False),
    Column("author", String(200), nullable=True),
    Column("parent_id", Integer, ForeignKey("labels.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("image_oid", OID, ForeignKey("images.oid"), primary_key=True),
    Column("name", Text, nullable=False),
    Column("labels_id", Integer, ForeignKey("labels.id"), nullable=True),
    Column("status", String(16), nullable=False, index=True),
    Column("source_split", String(16), nullable=True),
    Column("import_id", Integer, ForeignKey("imports.id"), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", OID, primary_key=True),
    Column("parent_id", OID, ForeignKey("dataset_versions.id"), nullable=True),
    Column("message", Text, nullable=False),
    Column("manifest_oid", OID, nullable=False),
    Column("n_images", Integer, nullable=False),
    Column("n_boxes", Integer, nullable=False),
    Column("stats", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("ix_dataset_versions_created_at", dataset_versions.c.created_at)
