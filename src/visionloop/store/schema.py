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

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # train, tune, trial
    Column("status", String(16), nullable=False, index=True),  # running, finished, failed
    Column("dataset_version_id", OID, ForeignKey("dataset_versions.id"), nullable=False),
    Column("parent_id", Integer, ForeignKey("runs.id"), nullable=True),
    Column("config", JSON, nullable=False),
    Column("environment", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("artifacts", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False),
    Column("dataset_version_id", OID, ForeignKey("dataset_versions.id"), nullable=False),
    Column("architecture", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    Column("weights_oid", OID, nullable=False),
    Column("classes", JSON, nullable=False),
    Column("imgsz", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("artifacts", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("gate_report", JSON, nullable=True),
    Column("created_by", String(200), nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, index=True),
    Column("version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("previous_version", Integer, ForeignKey("model_versions.version"), nullable=True),
    Column("action", String(16), nullable=False),  # promote, rollback
    Column("actor", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version", Integer, ForeignKey("model_versions.version"), nullable=False, index=True),
    Column("dataset_version_id", OID, ForeignKey("dataset_versions.id"), nullable=False),
    Column("split", String(16), nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("artifacts", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
