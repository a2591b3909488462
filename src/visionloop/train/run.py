"""``visionloop train``: a recorded run from a dataset version to a registered model version."""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import insert, select, update

from visionloop import __version__
from visionloop.data.versions import VersionInfo, resolve
from visionloop.errors import DataError, UsageError
from visionloop.store import schema
from visionloop.train.augment import build_augment
from visionloop.train.checkpoint import load_weights, read_weights_file, weights_bytes
from visionloop.train.config import TrainConfig
from visionloop.train.data import DetectionDataset, Sample, load_split
from visionloop.train.engine import FitState, Hook, fit, pick_device
from visionloop.train.zoo import build_model
from visionloop.workspace import Workspace, utcnow

PACKAGES = ("visionloop", "torch", "torchvision", "numpy", "pillow", "pycocotools", "safetensors")


@dataclass(frozen=True)
class TrainResult:
    run_id: int
    model_version: int | None
    metrics: dict[str, Any]
    fit: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "metrics": self.metrics,
            "fit": self.fit,
        }


def environment(cfg: TrainConfig) -> dict[str, Any]:
    """Code version, package versions, device and seed: what a re-run needs to match."""
    commit = None
    with contextlib.suppress(OSError):
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).parent,
                check=False,
            ).stdout.strip()
            or None
        )
    packages = {}
    for p in PACKAGES:
        try:
            packages[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return {
        "code_version": __version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "packages": packages,
        "device": str(pick_device(cfg.device)),
        "seed": cfg.seed,
        "threads": torch.get_num_threads(),
    }


def run_dir(ws: Workspace, run_id: int) -> Path:
    path = ws.root / "runs" / str(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _start_run(ws: Workspace, version: VersionInfo, cfg: TrainConfig, kind: str, parent: int | None) -> int:
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(schema.runs).values(
                kind=kind,
                status="running",
                dataset_version_id=version.id,
                parent_id=parent,
                config=cfg.model_dump(),
                environment=environment(cfg),
                metrics={},
                artifacts={},
                created_at=utcnow(),
            )
        )
        key = res.inserted_primary_key
        assert key is not None
        return int(key[0])


def _resume_run(ws: Workspace, run_id: int) -> tuple[VersionInfo, TrainConfig]:
    with ws.engine.connect() as conn:
        row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
    if row is None:
        raise UsageError(f"no run {run_id}", fix="list runs with `visionloop runs`")
    if row.status == "finished":
        raise UsageError(f"run {run_id} already finished", fix="start a new run")
    with ws.engine.begin() as conn:
        conn.execute(
            update(schema.runs).where(schema.runs.c.id == run_id).values(status="running", error=None)
        )
    return resolve(ws, row.dataset_version_id), TrainConfig.model_validate(row.config)


def _finish_run(ws: Workspace, run_id: int, **values: Any) -> None:
    with ws.engine.begin() as conn:
        conn.execute(
            update(schema.runs).where(schema.runs.c.id == run_id).values(finished_at=utcnow(), **values)
        )


def train(
    ws: Workspace,
    dataset: str | None = None,
    cfg: TrainConfig | None = None,
    *,
    resume: int | None = None,
    hook: Hook | None = None,
    created_by: str | None = None,
    register: bool = True,
    kind: str = "train",
    parent: int | None = None,
    on_data: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train on ``dataset`` (a dataset version ref) with ``cfg``, or continue run ``resume``;
    evaluate the best epoch on the test split and register it as a model version."""
    from visionloop.evaluate.runner import score_samples

    hook = hook or (lambda _kind, _info: None)
    if resume is not None:
        version, cfg = _resume_run(ws, resume)
        run_id = resume
    else:
        if dataset is None or cfg is None:
            raise UsageError("train needs a dataset version and a configuration")
        version = resolve(ws, dataset)
        run_id = _start_run(ws, version, cfg, kind, parent)
    torch.manual_seed(cfg.seed)
    try:
        train_samples, classes = load_split(ws, version, "train", cfg.imgsz, on_data)
        val_samples, _ = load_split(ws, version, "val", cfg.imgsz, on_data)
        test_samples, _ = load_split(ws, version, "test", cfg.imgsz, on_data)
        if len(train_samples) < 2 or not val_samples:
            raise DataError(
                f"dataset version {version.short} has {len(train_samples)} train and "
                f"{len(val_samples)} val images; training needs at least 2 train and 1 val image",
                fix="import more labeled data, or snapshot with other split ratios",
            )
        model = build_model(cfg.model, len(classes), cfg.imgsz)
        if cfg.weights and resume is None:
            loaded, total = load_weights(model, read_weights_file(Path(cfg.weights)), strict=False)
            if loaded == 0:
                raise DataError(
                    "none of the pretrained weights fit this architecture",
                    where=cfg.weights,
                    fix=f"use weights of a `{cfg.model}` model",
                )
            hook("weights", {"loaded": loaded, "total": total})
        device = pick_device(cfg.device)
        dataset_ = DetectionDataset(train_samples, build_augment(cfg.augment, train=True))
        state = fit(
            model,
            cfg,
            dataset_,
            lambda m: score_samples(m, val_samples, classes, device)["map50_95"],
            run_dir(ws, run_id),
            hook,
            resume=resume is not None,
        )
        return _conclude(
            ws,
            run_id,
            version,
            cfg,
            model,
            classes,
            state,
            test_samples or val_samples,
            "test" if test_samples else "val",
            created_by,
            register,
        )
    except BaseException as exc:
        status = {
            "KeyboardInterrupt": "interrupted",
            "StopRequested": "interrupted",
            "TrialPruned": "pruned",
        }.get(type(exc).__name__, "failed")
        _finish_run(ws, run_id, status=status, error=f"{type(exc).__name__}: {exc}")
        raise


def _conclude(
    ws: Workspace,
    run_id: int,
    version: VersionInfo,
    cfg: TrainConfig,
    model: torch.nn.Module,
    classes: list[str],
    state: FitState,
    eval_samples: list[Sample],
    split: str,
    created_by: str | None,
    register: bool,
) -> TrainResult:
    from visionloop.evaluate.runner import evaluation_artifacts, score_samples

    best = run_dir(ws, run_id) / "best.safetensors"
    load_weights(model, best.read_bytes())
    device = pick_device(cfg.device)
    scored = score_samples(model, eval_samples, classes, device, keep=True)
    metrics = {k: v for k, v in scored.items() if not k.startswith("_")}
    weights_oid = ws.blobs.put_bytes(weights_bytes(model))
    artifacts = {"weights": weights_oid, **evaluation_artifacts(ws, scored, classes)}
    ws.blobs.flush()
    fit_info = {
        "epochs_done": state.epoch,
        "best_epoch": state.best_epoch,
        "best_val_map50_95": state.best_score,
        "stopped": state.stopped,
        "history": state.history,
        "eval_split": split,
        "model": cfg.model,
        "imgsz": cfg.imgsz,
    }
    _finish_run(ws, run_id, status="finished", metrics={**metrics, "fit": fit_info}, artifacts=artifacts)
    model_version = register_run(ws, run_id, created_by=created_by) if register else None
    return TrainResult(run_id, model_version, metrics, fit_info)


def register_run(ws: Workspace, run_id: int, *, created_by: str | None = None) -> int:
    """Register the model of finished run ``run_id`` as a new model version (with its lineage)."""
    from visionloop.registry.versions import register_model

    with ws.engine.connect() as conn:
        row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
    if row is None or row.status != "finished":
        raise UsageError(f"run {run_id} has not finished", fix="train it to the end first (or --resume it)")
    cfg = TrainConfig.model_validate(row.config)
    metrics = {k: v for k, v in row.metrics.items() if k != "fit"}
    lineage = {
        "dataset_version": row.dataset_version_id,
        "run": run_id,
        "config": row.config,
        "environment": row.environment,
        "eval_split": row.metrics.get("fit", {}).get("eval_split"),
    }
    classes = json.loads(ws.blobs.get(resolve(ws, row.dataset_version_id).id))["classes"]
    return register_model(
        ws,
        run_id=run_id,
        dataset_version_id=row.dataset_version_id,
        architecture=cfg.model,
        weights_oid=row.artifacts["weights"],
        classes=list(classes),
        imgsz=cfg.imgsz,
        metrics=metrics,
        artifacts=dict(row.artifacts),
        lineage=lineage,
        created_by=created_by,
    )
