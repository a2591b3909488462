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
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(16), nullable=False),  # threshold, schedule, drift, manual
    # One trigger condition starts exactly one pipeline run: the unique key makes it so.
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("detail", JSON, nullable=False),  # why the trigger fired
    # running, succeeded, failed, retry_wait, interrupted
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("outputs", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("pipeline_runs.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),
    Column("name", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # running, done, skipped, failed
    Column("input_hash", OID, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("error", Text, nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("seconds", Float, nullable=True),
)

Index("ix_pipeline_steps_name_input", pipeline_steps.c.name, pipeline_steps.c.input_hash)

leases = Table(
    "leases",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

review_tasks = Table(
    "review_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("image_oid", OID, ForeignKey("items.image_oid"), nullable=False, index=True),
    # the model's proposal (a labels revision with origin ``model:<version>``)
    Column("proposal_id", Integer, ForeignKey("labels.id"), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("priority", Float, nullable=False),  # higher: a person's look is worth more
    Column("reasons", JSON, nullable=False),  # the routing policy's components
    # pending, accepted, edited, rejected, skipped, auto_accepted
    Column("status", String(16), nullable=False, index=True),
    Column("decision_id", Integer, ForeignKey("labels.id"), nullable=True),  # the revision it produced
    Column("decided_by", String(200), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("ix_review_tasks_status_priority", review_tasks.c.status, review_tasks.c.priority)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer, annotator, approver, admin
    Column("password_hash", Text, nullable=False),  # scrypt, salted
    Column("disabled", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("token_hash", OID, nullable=False, unique=True),  # sha256 of the token; the token is shown once
    Column("label", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id_hash", OID, primary_key=True),  # sha256 of the session cookie value
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

releases = Table(
    "releases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(32), nullable=False),
    Column("sequence", Integer, nullable=False),  # per channel: 1, 2, 3, … (unique with the channel)
    Column("kind", String(16), nullable=False),  # publish, kill
    Column("model_version", Integer, ForeignKey("model_versions.version"), nullable=False),
    Column("rollout_percent", Integer, nullable=False),
    # the release a device outside this one's rollout gets (the channel's head before this one)
    Column("previous_id", Integer, ForeignKey("releases.id"), nullable=True),
    Column("manifest", Text, nullable=False),  # canonical JSON, exactly the signed bytes
    Column("signature", String(128), nullable=False),  # Ed25519, base64
    Column("key_id", String(64), nullable=False),
    Column("actor", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "sequence", name="uq_releases_channel_sequence"),
)

# the server's traffic split between the production model and the `candidate` alias; the newest row
# rules (append-only: every change, rollback included, is a row with who and why)
rollout_events = Table(
    "rollout_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mode", String(16), nullable=False),  # off, canary, shadow
    Column("percent", Float, nullable=False),  # canary: share of requests the candidate answers
    Column("candidate_version", Integer, nullable=True),  # what `candidate` named when this was set
    Column("actor", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# per dataset version: the input/prediction statistics and embeddings drift is measured against
monitor_references = Table(
    "monitor_references",
    metadata,
    Column("dataset_version_id", OID, primary_key=True),
    Column("model_version", Integer, nullable=False),  # whose predictions the reference holds
    Column("features_oid", OID, nullable=False),  # npz blob: one row per reference image
    Column("n", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# one window of production traffic of one model version, with its drift tests against the reference
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version", Integer, nullable=False),
    Column("route", String(16), nullable=False),  # production, canary, shadow
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=False),
    Column("n", Integer, nullable=False),  # predictions in the window
    Column("dropped", Integer, nullable=False),  # summaries dropped (queue full) while it was open
    Column("reference_id", OID, nullable=True),  # the dataset version it was compared with
    Column("features_oid", OID, nullable=True),  # npz blob: one row per prediction
    Column("summary", JSON, nullable=False),  # aggregates shown on charts
    Column("drift", JSON, nullable=False),  # per test: statistic, p-value / PSI, threshold, flagged
    Column("drifted", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

Index("ix_monitor_windows_model_version_id", monitor_windows.c.model_version, monitor_windows.c.id)

# a monitoring finding handed to the agent as a trigger (drift, degradation); the key makes it once
monitor_signals = Table(
    "monitor_signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # drift, degradation
    Column("key", String(200), nullable=False, unique=True),
    Column("model_version", Integer, nullable=False),
    Column("window_id", Integer, ForeignKey("monitor_windows.id"), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# live accuracy: the production model's metrics on reviewed production samples
monitor_accuracy = Table(
    "monitor_accuracy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_version", Integer, nullable=False, index=True),
    Column("n_images", Integer, nullable=False),
    Column("metrics", JSON, nullable=False),  # map, map50, per class
    Column("created_at", DateTime(timezone=True), nullable=False),
)
