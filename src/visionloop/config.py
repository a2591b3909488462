"""Typed, frozen settings of a workspace, parsed once at the edge.

``visionloop.toml`` holds the project's name, classes, split ratios, storage
URLs and policies. Two environment variables override storage so one
workspace file can point at PostgreSQL / S3 in production:
``VISIONLOOP_DATABASE_URL`` and ``VISIONLOOP_BLOB_URL``.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from visionloop.errors import ConfigError

CONFIG_NAME = "visionloop.toml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProjectConfig(_Frozen):
    name: str = "visionloop"
    classes: tuple[str, ...] = ()


class StorageConfig(_Frozen):
    #: Any SQLAlchemy URL; empty means ``sqlite:///<workspace>/visionloop.db``.
    database: str = ""
    #: A path relative to the workspace or any fsspec URL (``s3://bucket/prefix``).
    blobs: str = "blobs"
    #: Extra fsspec options for a blob URL, e.g. ``{ endpoint_url = "http://127.0.0.1:9000" }`` for S3.
    blob_options: dict[str, Any] = Field(default_factory=dict)


class SplitConfig(_Frozen):
    train: float = Field(0.7, ge=0, le=1)
    val: float = Field(0.15, ge=0, le=1)
    test: float = Field(0.15, ge=0, le=1)
    #: Keep splits declared by the source (VOC ImageSets, COCO split files, YOLO split folders).
    keep_source_splits: bool = False

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split ratios must add up to 1, they add up to {total:g}")
        return self


class ImportConfig(_Frozen):
    #: A box may overshoot the image by this many pixels and is then clipped; beyond, it is rejected.
    box_tolerance_px: float = Field(2.0, ge=0)
    max_archive_bytes: int = Field(20 * 2**30, gt=0)
    max_archive_entries: int = Field(1_000_000, gt=0)
    workers: int = Field(4, ge=1, le=64)


class RetrainPolicy(_Frozen):
    #: Retrain once this many newly labeled items exist since the production model's dataset version.
    min_new_items: int = Field(100, ge=1)
    #: A cron expression (``0 3 * * *``: every day at 03:00 UTC) that also starts a retrain; empty = none.
    schedule: str = ""
    #: Also require at least this many new labeled boxes of these classes, e.g. ``{ Platelets = 20 }``.
    min_new_per_class: dict[str, int] = Field(default_factory=dict)
    #: Start a retrain from the production model's weights (same architecture and classes).
    warm_start: bool = True

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        if v.strip():
            from croniter import croniter

            if not croniter.is_valid(v):
                raise ValueError(f"{v!r} is not a cron expression (minute hour day month weekday)")
        return v.strip()


class AutolabelPolicy(_Frozen):
    #: The agent proposes labels (production model) for new unlabeled items on every round.
    enabled: bool = True
    #: Auto-accept an image whose every proposal scores at least this (0 = off: people review all).
    auto_accept: float = Field(0.0, ge=0, le=1)


class AgentConfig(_Frozen):
    #: Seconds between two looks at the triggers.
    interval_s: float = Field(10.0, gt=0)
    #: A failed pipeline run is retried this many times in all, with exponential back-off.
    max_attempts: int = Field(3, ge=1)
    backoff_s: float = Field(30.0, ge=0)
    #: The pipeline lock expires this long after the last heartbeat of a vanished agent.
    lease_ttl_s: float = Field(120.0, ge=1)


class PoliciesConfig(_Frozen):
    retrain: RetrainPolicy = RetrainPolicy()
    autolabel: AutolabelPolicy = AutolabelPolicy()
    agent: AgentConfig = AgentConfig()


class TrainDefaults(_Frozen):
    """Defaults of ``visionloop train`` (each is also a command-line option)."""

    model: str = "ssdlite"
    epochs: int = Field(30, ge=1)
    imgsz: int = Field(320, ge=32)
    batch_size: int = Field(8, ge=1)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(0.002, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    augment: str = "default"
    patience: int = Field(8, ge=1)
    #: Stop after this many minutes of training (0 = no budget); the best checkpoint is kept.
    time_budget_min: float = Field(0, ge=0)


class TuneConfig(_Frozen):
    """Search space of ``visionloop tune``."""

    lr: tuple[float, float] = (0.0005, 0.005)
    epochs: tuple[int, int] = (5, 30)
    imgsz: tuple[int, ...] = (256, 320, 416)
    models: tuple[str, ...] = ("ssdlite",)
    augment: tuple[str, ...] = ("light", "default")


class GatesConfig(_Frozen):
    """What a model version must pass before it can be promoted (``gate`` checks)."""

    min_map50_95: float = Field(0.0, ge=0, le=1)
    min_map50: float = Field(0.0, ge=0, le=1)
    #: Per-class floors, e.g. ``{ WBC = 0.5 }``.
    min_class_ap: dict[str, float] = Field(default_factory=dict)
    min_class_recall: dict[str, float] = Field(default_factory=dict)
    #: A candidate may trail the production model by at most this much mAP50-95 (absolute).
    max_regression: float = Field(0.01, ge=0, le=1)
    #: ONNX Runtime CPU p50 latency budget in milliseconds at the model's input size (0 = none).
    max_latency_ms: float = Field(0, ge=0)
    #: Size budget of the exported model in MB (0 = none).
    max_size_mb: float = Field(0, ge=0)
    require_approval: bool = False
    #: Whether the person who trained a model may approve it.
    allow_self_approval: bool = False


class MonitorConfig(_Frozen):
    """Production monitoring (``visionloop serve --monitor``): windows, drift tests, samples, alerts."""

    enabled: bool = True
    #: Predictions waiting for the recorder (about 17 KB each: a thumbnail, a crop, the answer); when
    #: full, new ones are dropped and counted (never waited on).
    queue_size: int = Field(1024, ge=1, le=100_000)
    #: A window closes after this many predictions, or after ``window_max_s`` with at least ``min_window``.
    window_size: int = Field(200, ge=10, le=100_000)
    window_max_s: float = Field(3600.0, gt=0)
    #: Drift tests need at least this many predictions in the window (and in the reference).
    min_window: int = Field(50, ge=10)
    #: Share of production images stored as unlabeled items (source ``production:v<version>``).
    sample_rate: float = Field(0.01, ge=0, le=1)
    #: Images of the model's dataset version the reference holds (held-out splits first).
    reference_images: int = Field(500, ge=20, le=100_000)
    #: Significance of the KS (Bonferroni over statistics) and kernel (MMD) tests.
    alpha: float = Field(0.01, gt=0, lt=1)
    #: Population stability index from which a statistic counts as moved (0.1 slight, 0.25 major).
    psi_threshold: float = Field(0.25, gt=0)
    permutations: int = Field(200, ge=20, le=10_000)
    #: A window is drifted when at least this many tests flag it.
    min_flagged: int = Field(2, ge=1)
    #: Degradation: live mAP50-95 below the model's test mAP50-95 minus this margin.
    degradation_margin: float = Field(0.1, ge=0, le=1)
    min_accuracy_images: int = Field(20, ge=1)
    #: Alerts are POSTed here as JSON (http/https; link-local and metadata addresses are refused).
    webhook_url: str = ""
    webhook_allow_loopback: bool = False
    webhook_timeout_s: float = Field(3.0, gt=0, le=60)

    @model_validator(mode="after")
    def _webhook(self) -> MonitorConfig:
        if self.webhook_url.strip():
            from visionloop.monitor.alerts import WebhookRefused, check_webhook_url

            try:
                check_webhook_url(self.webhook_url, allow_loopback=self.webhook_allow_loopback)
            except WebhookRefused as exc:
                raise ValueError(str(exc)) from None
        if self.min_window > self.window_size:
            raise ValueError(f"min_window ({self.min_window}) exceeds window_size ({self.window_size})")
        return self


class Settings(_Frozen):
    project: ProjectConfig = ProjectConfig()
    storage: StorageConfig = StorageConfig()
    split: SplitConfig = SplitConfig()
    import_: ImportConfig = Field(ImportConfig(), alias="import")
    policies: PoliciesConfig = PoliciesConfig()
    train: TrainDefaults = TrainDefaults()
    tune: TuneConfig = TuneConfig()
    gates: GatesConfig = GatesConfig()
    monitor: MonitorConfig = MonitorConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def database_url(self, workspace: Path) -> str:
        url = os.environ.get("VISIONLOOP_DATABASE_URL") or self.storage.database
        return url or f"sqlite:///{workspace / 'visionloop.db'}"

    def blob_url(self, workspace: Path) -> str:
        url = os.environ.get("VISIONLOOP_BLOB_URL") or self.storage.blobs
        return url if "://" in url else str(workspace / url)


def load_settings(path: Path) -> Settings:
    """Parse ``visionloop.toml``; every mistake names the file and the key."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            "the workspace has no settings file",
            where=str(path),
            fix="run `visionloop init` to create a workspace",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"settings file is not valid TOML ({exc})", where=str(path), fix="correct the TOML syntax"
        ) from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"invalid setting `{key}`: {first['msg']}",
            where=str(path),
            fix=f"correct `{key}` in {CONFIG_NAME}",
        ) from None


def _inline_table(options: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in options.items()) + " }"


def render_settings(
    name: str,
    classes: list[str],
    database: str = "",
    blobs: str = "blobs",
    blob_options: dict[str, Any] | None = None,
) -> str:
    """The commented ``visionloop.toml`` written by ``visionloop init``."""
    class_list = ", ".join(json.dumps(c, ensure_ascii=False) for c in classes)
    return f"""# visionloop workspace settings. Edit freely; `visionloop` re-reads this file on every command.

[project]
name = {json.dumps(name, ensure_ascii=False)}
# Class names, in id order. Imports map their class names onto this list;
# unknown names are an error unless `visionloop import --add-classes`.
classes = [{class_list}]

[storage]
# Any SQLAlchemy URL (e.g. "postgresql+psycopg://user@host/db"); empty = SQLite in this folder.
# Overridden by the environment variable VISIONLOOP_DATABASE_URL.
database = {json.dumps(database)}
# A folder relative to this workspace or any fsspec URL (e.g. "s3://bucket/visionloop").
# Overridden by VISIONLOOP_BLOB_URL.
blobs = {json.dumps(blobs)}
# fsspec options for the blob URL, e.g. {{ endpoint_url = "http://127.0.0.1:9000" }} for S3-compatible stores.
blob_options = {_inline_table(blob_options or {})}

[split]
# Each image's split is derived from its content hash, so it never changes as data grows.
train = 0.7
val = 0.15
test = 0.15
# Keep splits the source declares (VOC ImageSets, COCO split files, YOLO split folders).
keep_source_splits = false

[import]
# A box may overshoot the image by this many pixels (then it is clipped); beyond, it is rejected.
box_tolerance_px = 2.0
max_archive_bytes = {20 * 2**30}
max_archive_entries = 1000000
workers = 4

[policies.retrain]
# Retrain when this many newly labeled items exist since the production model's dataset version.
min_new_items = 100
# Optional cron expression (UTC), e.g. "0 3 * * 0" (Sundays at 03:00).
schedule = ""
# Also require this many new labeled boxes of some classes, e.g. {{ Platelets = 20 }}.
min_new_per_class = {{}}
# Start a retrain from the production model's weights (same architecture, classes and input size).
warm_start = true

[policies.autolabel]
# The agent proposes labels with the production model for new unlabeled images (a review task each).
enabled = true
# Auto-accept images whose every proposal scores at least this (0 = off; recorded as auto-accepted).
auto_accept = 0.0

[policies.agent]
# `visionloop agent`: seconds between looks at the triggers; retries of a failed run with back-off
# (backoff_s, then twice that, …); the pipeline lock of a vanished agent expires after lease_ttl_s.
interval_s = 10.0
max_attempts = 3
backoff_s = 30.0
lease_ttl_s = 120.0

[train]
# Defaults of `visionloop train` (measured on BCCD from scratch on a 2-core CPU: docs/BENCHMARKS.md).
# With a time budget, as many epochs as fit are planned and the learning rate anneals to end on time.
model = "ssdlite"
epochs = 30
imgsz = 320
batch_size = 8
optimizer = "adamw"
lr = 0.002
weight_decay = 0.01
augment = "default"
patience = 8
time_budget_min = 0

[gates]
# Floors a model version must reach (0 = no floor) and its allowed regression against production.
min_map50_95 = 0.0
min_map50 = 0.0
min_class_ap = {{}}
min_class_recall = {{}}
max_regression = 0.01
max_latency_ms = 0
max_size_mb = 0
require_approval = false
allow_self_approval = false

[monitor]
# `visionloop serve --monitor`: each prediction's summary goes through a bounded queue (when full it
# is dropped and counted, never waited on); windows of window_size predictions are tested for drift
# against the reference built from the model's dataset version (reference_images images).
enabled = true
queue_size = 1024
window_size = 200
window_max_s = 3600.0
min_window = 50
# Share of production images kept as unlabeled items for auto-annotation and review.
sample_rate = 0.01
reference_images = 500
# KS + PSI per statistic, PSI of the class mix, MMD of the embeddings; drifted when min_flagged agree.
alpha = 0.01
psi_threshold = 0.25
permutations = 200
min_flagged = 2
# Degradation: live mAP50-95 on reviewed production samples below the test mAP50-95 minus this.
degradation_margin = 0.1
min_accuracy_images = 20
# Alerts are logged and POSTed here as JSON ("" = log only). Link-local and metadata addresses are
# refused; loopback only with webhook_allow_loopback = true.
webhook_url = ""
webhook_allow_loopback = false
webhook_timeout_s = 3.0
"""
