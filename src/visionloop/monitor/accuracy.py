"""Live accuracy: the production model's mAP on production samples people have reviewed.

The samples are the items the recorder stored (imports of source ``production:v<N>``) whose current
labels revision has origin ``review`` — what a person decided, never a model's proposal or an
auto-accepted one. The model is the bundle of the version the alias names, run with ONNX Runtime
(scores down to 0.001, as evaluation does); the metrics are pycocotools' (``evaluate/metrics.py``,
the ``train`` extra). One ``monitor_accuracy`` row per measurement. When the live mAP50-95 falls below
the model's test mAP50-95 by more than ``monitor.degradation_margin`` (with at least
``monitor.min_accuracy_images`` images), a degradation signal goes to the agent and an alert out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from visionloop.data import labels as labelset
from visionloop.errors import DataError, ModelNotFoundError
from visionloop.monitor.alerts import Alerter
from visionloop.monitor.signals import record_signal, signal_key
from visionloop.registry.aliases import resolve_alias
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.types import Detections
from visionloop.workspace import Workspace, utcnow

PRODUCTION_SOURCE = "production:v%"
_MIN_SCORE = 0.001


@dataclass(frozen=True)
class LiveAccuracy:
    model_version: int
    n_images: int
    metrics: dict[str, Any]
    test_map50_95: float | None
    degraded: bool
    signal: str | None
    id: int | None  # the monitor_accuracy row (None when there was nothing to measure)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reviewed_samples(ws: Workspace) -> list[tuple[str, str]]:
    """(image oid, labels JSON) of production samples whose labels a person decided."""
    items, labels, imports = schema.items, schema.labels, schema.imports
    q = (
        select(items.c.image_oid, labels.c.boxes)
        .select_from(
            items.join(labels, items.c.labels_id == labels.c.id).join(
                imports, items.c.import_id == imports.c.id
            )
        )
        .where(
            imports.c.source.like(PRODUCTION_SOURCE), labels.c.origin == "review", items.c.status == "labeled"
        )
        .order_by(items.c.image_oid)
    )
    with ws.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(q)]


def _truth(text: str, classes: list[str]) -> Detections:
    boxes = [b for b in labelset.parse(text) if b[4] in classes]
    return Detections(
        np.array([b[:4] for b in boxes], np.float64).reshape(-1, 4),
        np.array([classes.index(str(b[4])) for b in boxes], np.int64),
        None,
        np.array([b[5] for b in boxes], bool),
    )


def last_measured(ws: Workspace, version: int) -> int | None:
    """How many reviewed samples the latest live accuracy of ``version`` was measured on."""
    t = schema.monitor_accuracy
    with ws.engine.connect() as conn:
        n = conn.execute(
            select(t.c.n_images).where(t.c.model_version == version).order_by(t.c.id.desc()).limit(1)
        ).scalar()
    return None if n is None else int(n)


def live_accuracy(
    ws: Workspace, *, alias: str = "production", alerter: Alerter | None = None
) -> LiveAccuracy:
    """Measure the alias's model on reviewed production samples; record it; signal a degradation."""
    from visionloop.evaluate.metrics import coco_metrics
    from visionloop.serve.follow import bundle_cache, prepare_bundle
    from visionloop.serve.model import decode, detect, load

    version = resolve_alias(ws, alias)
    if version is None:
        raise ModelNotFoundError(
            f"alias {alias!r} names no model version, so there is no live accuracy to measure",
            where=str(ws.root),
            fix=f"promote one with `visionloop model promote V --alias {alias}`",
        )
    mv = get_model(ws, version)
    test = mv.metrics.get("map50_95")
    samples = reviewed_samples(ws)
    if not samples:
        return LiveAccuracy(version, 0, {}, test, False, None, None)
    loaded = load(prepare_bundle(ws, version, bundle_cache(ws)))
    classes = list(loaded.bundle.classes)
    truths, preds, sizes = [], [], []
    for oid, text in samples:
        rgb = decode(ws.blobs.get(oid))
        found = detect(loaded, rgb, _MIN_SCORE)
        truths.append(_truth(text, classes))
        preds.append(
            Detections(
                np.array([d["box"] for d in found], np.float64).reshape(-1, 4),
                np.array([d["class_id"] for d in found], np.int64),
                np.array([d["score"] for d in found], np.float64),
            )
        )
        sizes.append(rgb.size)
    try:
        metrics = coco_metrics(truths, preds, classes, sizes).metrics
    except DataError:  # reviewed, and nothing on them: no accuracy to speak of
        return LiveAccuracy(version, len(samples), {}, test, False, None, None)
    cfg = ws.settings.monitor
    degraded = bool(
        test is not None
        and len(samples) >= cfg.min_accuracy_images
        and metrics["map50_95"] < float(test) - cfg.degradation_margin
    )
    with ws.engine.begin() as conn:
        row_id = int(
            conn.execute(
                insert(schema.monitor_accuracy).returning(schema.monitor_accuracy.c.id),
                [
                    {
                        "model_version": version,
                        "n_images": len(samples),
                        "metrics": {**metrics, "test_map50_95": test, "degraded": degraded},
                        "created_at": utcnow(),
                    }
                ],
            ).scalar_one()
        )
    signal = None
    if degraded:
        detail = {
            "accuracy_id": row_id,
            "live_map50_95": metrics["map50_95"],
            "test_map50_95": test,
            "margin": cfg.degradation_margin,
            "n_images": len(samples),
        }
        signal = signal_key("degradation", version)
        record_signal(ws, "degradation", version, detail)
        (
            alerter
            or Alerter(
                cfg.webhook_url, allow_loopback=cfg.webhook_allow_loopback, timeout_s=cfg.webhook_timeout_s
            )
        ).send({"alert": "degradation", "model_version": version, **detail, "signal": signal})
    return LiveAccuracy(version, len(samples), metrics, test, degraded, signal, row_id)
