"""Evaluation runs: a model version on any split of any dataset version.

``score_samples`` is the shared core (training validates with it too);
``evaluate_model`` records an evaluation with its PR-curve and confusion-matrix
PNGs as blobs; ``evaluate_metrics`` is the cached form the gates use.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import insert, select

from visionloop.data.versions import resolve
from visionloop.errors import DataError
from visionloop.evaluate.confusion import confusion_matrix
from visionloop.evaluate.metrics import coco_metrics
from visionloop.evaluate.plots import plot_confusion_matrix, plot_pr_curves
from visionloop.store import schema
from visionloop.train.data import Sample, load_split
from visionloop.train.engine import pick_device, predict, samples_to_tensors
from visionloop.types import Detections
from visionloop.workspace import Workspace, utcnow


def _original(d: Detections, scale: float) -> Detections:
    return Detections(d.xyxy / scale, d.class_id, d.confidence, d.crowd)


def score_samples(
    model: torch.nn.Module,
    samples: list[Sample],
    classes: list[str],
    device: torch.device,
    keep: bool = False,
) -> dict[str, Any]:
    """COCO metrics of ``model`` on ``samples`` (in original image pixels). With ``keep`` the result
    also carries ``_result``, ``_truth`` and ``_pred`` for plots."""
    preds = predict(model, samples_to_tensors(samples), device)
    truth = [_original(s.truth, s.scale) for s in samples]
    preds = [_original(p, s.scale) for p, s in zip(preds, samples, strict=True)]
    result = coco_metrics(truth, preds, classes, [s.original_size for s in samples])
    out: dict[str, Any] = dict(result.metrics)
    if keep:
        out.update(_result=result, _truth=truth, _pred=preds)
    return out


def evaluation_artifacts(ws: Workspace, scored: dict[str, Any], classes: list[str]) -> dict[str, str]:
    """PR curves and the confusion matrix as PNG blobs: ``{name: oid}``."""
    matrix = confusion_matrix(scored["_truth"], scored["_pred"], len(classes))
    with tempfile.TemporaryDirectory() as tmp:
        pr = plot_pr_curves(scored["_result"], classes, Path(tmp) / "pr.png")
        cm = plot_confusion_matrix(matrix, classes, Path(tmp) / "cm.png")
        return {
            "pr_curves.png": ws.blobs.put_bytes(pr.read_bytes()),
            "confusion_matrix.png": ws.blobs.put_bytes(cm.read_bytes()),
            "confusion_matrix.json": ws.blobs.put_bytes(json.dumps(np.asarray(matrix).tolist()).encode()),
        }


def load_model(ws: Workspace, ref: str | int) -> tuple[torch.nn.Module, Any]:
    """The registered model version ``ref`` (number or alias) with its weights loaded."""
    from visionloop.registry.versions import get_model
    from visionloop.train.checkpoint import load_weights
    from visionloop.train.zoo import build_model

    mv = get_model(ws, ref)
    model = build_model(mv.architecture, len(mv.classes), mv.imgsz)
    load_weights(model, ws.blobs.get(mv.weights_oid, verify=True))
    return model, mv


def evaluate_model(
    ws: Workspace,
    model_ref: str | int,
    dataset_ref: str = "latest",
    split: str = "test",
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate a model version on ``split`` of a dataset version; records and returns the evaluation."""
    model, mv = load_model(ws, model_ref)
    version = resolve(ws, dataset_ref)
    samples, classes = load_split(ws, version, split, mv.imgsz)
    if not samples:
        raise DataError(
            f"dataset version {version.short} has no {split} images", fix="choose another split with --split"
        )
    if classes != list(mv.classes):
        missing = [c for c in classes if c not in mv.classes]
        if missing:
            raise DataError(
                f"model v{mv.version} does not know the classes {missing} of dataset version {version.short}",
                fix="evaluate on a dataset version with the model's classes",
            )
        samples = [_remap(s, classes, list(mv.classes)) for s in samples]
    scored = score_samples(model, samples, list(mv.classes), pick_device(device), keep=True)
    metrics = {k: v for k, v in scored.items() if not k.startswith("_")}
    artifacts = evaluation_artifacts(ws, scored, list(mv.classes))
    ws.blobs.flush()
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(schema.evaluations).values(
                model_version=mv.version,
                dataset_version_id=version.id,
                split=split,
                metrics=metrics,
                artifacts=artifacts,
                created_at=utcnow(),
            )
        )
        key = res.inserted_primary_key
    return {
        "id": int(key[0]) if key else None,
        "model_version": mv.version,
        "dataset_version": version.id,
        "split": split,
        "metrics": metrics,
        "artifacts": artifacts,
    }


def _remap(s: Sample, src: list[str], dst: list[str]) -> Sample:
    ids = np.array([dst.index(c) for c in src], dtype=np.int64)
    t = s.truth
    return Sample(
        s.name,
        s.image,
        s.scale,
        s.original_size,
        Detections(t.xyxy, ids[t.class_id] if len(t) else t.class_id, None, t.crowd),
    )


def evaluate_metrics(
    ws: Workspace, model_version: int, dataset_version_id: str, split: str = "test"
) -> dict[str, Any]:
    """Metrics of a model version on a dataset split, reusing a recorded evaluation when there is one."""
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(schema.evaluations.c.metrics)
            .where(
                schema.evaluations.c.model_version == model_version,
                schema.evaluations.c.dataset_version_id == dataset_version_id,
                schema.evaluations.c.split == split,
            )
            .order_by(schema.evaluations.c.id.desc())
            .limit(1)
        ).first()
    if row is not None:
        return dict(row[0])
    return dict(evaluate_model(ws, model_version, dataset_version_id, split)["metrics"])
