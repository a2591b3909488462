"""``visionloop export``: a model version → ONNX (+ int8, + ORT format), each with its parity, size
and CPU latency recorded as artifacts of the version, for its gates."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from visionloop.data.versions import resolve
from visionloop.errors import GateError
from visionloop.evaluate.metrics import coco_metrics
from visionloop.export.contract import run_session, session, to_input
from visionloop.export.onnx import OPSET, compare, export_onnx, latency_ms, run_torch
from visionloop.export.quantize import quantize_int8, to_ort_format
from visionloop.types import Detections
from visionloop.workspace import Workspace

Runner = Callable[[np.ndarray], Detections]


@dataclass(frozen=True)
class _Input:
    x: np.ndarray  # the model input (imgsz × imgsz)
    factor: np.ndarray  # input pixels → original pixels, per xyxy coordinate
    truth: Detections  # in original pixels
    size: tuple[int, int]  # original (width, height)


def _inputs(ws: Workspace, version_id: str, split: str, imgsz: int, limit: int) -> list[_Input]:
    from visionloop.train.data import load_split

    samples, _ = load_split(ws, resolve(ws, version_id), split, imgsz)
    out = []
    for s in samples[:limit]:
        x, (sx, sy) = to_input(Image.fromarray(s.image), imgsz)
        truth = Detections(s.truth.xyxy / s.scale, s.truth.class_id, None, s.truth.crowd)
        out.append(_Input(x, np.array([sx, sy, sx, sy]) / s.scale, truth, s.original_size))
    return out


def _map(run: Runner, inputs: list[_Input], classes: list[str]) -> float:
    """mAP50-95 of a runner on the inputs, in original pixels."""
    preds = []
    for i in inputs:
        d = run(i.x)
        preds.append(Detections(d.xyxy * i.factor, d.class_id, d.confidence))
    metrics = coco_metrics([i.truth for i in inputs], preds, classes, [i.size for i in inputs]).metrics
    return float(metrics["map50_95"])


def export_model(
    ws: Workspace,
    ref: str | int,
    *,
    parity_images: int = 20,
    int8: bool = True,
    int8_max_drop: float = 0.01,
    ort: bool = True,
) -> dict[str, Any]:
    """Export model version ``ref``: ONNX checked against PyTorch on validation images of its dataset
    version (boxes matched by IoU ≥ 0.99, scores within 0.01, mAP within 0.001); optionally int8 (kept
    only when its mAP drop is within ``int8_max_drop``) and the ORT format; size and CPU latency of each.
    Every kept file and the report become artifacts of the version."""
    from visionloop.evaluate.runner import load_model
    from visionloop.registry.versions import add_artifacts

    model, mv = load_model(ws, ref)
    classes = list(mv.classes)
    data = export_onnx(model, mv.imgsz)
    sess = session(data)
    inputs = _inputs(ws, mv.dataset_version_id, "val", mv.imgsz, parity_images)
    boxes = matched = 0
    score_diff = 0.0
    for i in inputs:
        c = compare(run_torch(model, i.x), run_session(sess, i.x))
        boxes, matched = boxes + c["boxes"], matched + c["matched"]
        score_diff = max(score_diff, c["max_score_diff"])
    map_torch = _map(lambda x: run_torch(model, x), inputs, classes) if inputs else 0.0
    map_onnx = _map(lambda x: run_session(sess, x), inputs, classes) if inputs else 0.0
    share = matched / boxes if boxes else 1.0
    parity = {
        "images": len(inputs),
        "boxes": boxes,
        "matched": matched,
        "matched_share": round(share, 4),
        "max_score_diff": round(score_diff, 6),
        "map50_95_torch": round(map_torch, 4),
        "map50_95_onnx": round(map_onnx, 4),
        "passed": share >= 0.99 and score_diff <= 0.01 and abs(map_torch - map_onnx) <= 0.001,
    }
    files = {"model.onnx": data}
    report: dict[str, Any] = {
        "format": "onnx",
        "opset": OPSET,
        "input": [3, mv.imgsz, mv.imgsz],
        "preprocessing": "RGB, stretched to input size, float32 in [0, 1], CHW",
        "size_mb": round(len(data) / 2**20, 3),
        "latency_ms": latency_ms(sess, mv.imgsz),
        "parity": parity,
    }
    if int8:
        calib = [i.x for i in _inputs(ws, mv.dataset_version_id, "train", mv.imgsz, 32)]
        q = quantize_int8(data, calib)
        qsess = session(q)
        map_q = _map(lambda x: run_session(qsess, x), inputs, classes) if inputs else 0.0
        kept = map_onnx - map_q <= int8_max_drop
        report["int8"] = {
            "kept": kept,
            "map50_95": round(map_q, 4),
            "map_drop": round(map_onnx - map_q, 4),
            "max_drop": int8_max_drop,
            "size_mb": round(len(q) / 2**20, 3),
            "latency_ms": latency_ms(qsess, mv.imgsz),
            "reason": "within the bound" if kept else "mAP drop over the bound: not kept",
        }
        if kept:
            files["model.int8.onnx"] = q
    if ort:
        o = to_ort_format(data)
        files["model.ort"] = o
        report["ort"] = {"size_mb": round(len(o) / 2**20, 3), "for": "ONNX Runtime Mobile"}
    artifacts = {name: ws.blobs.put_bytes(blob) for name, blob in files.items()}
    artifacts["export.json"] = ws.blobs.put_bytes(json.dumps(report, indent=1).encode())
    add_artifacts(ws, mv.version, artifacts)
    return {"model_version": mv.version, "artifacts": artifacts, **report}


def export_report(ws: Workspace, version: int) -> dict[str, Any] | None:
    """The export report of a model version, if it was exported."""
    from visionloop.registry.versions import get_model

    oid = get_model(ws, version).artifacts.get("export.json")
    return None if oid is None else dict(json.loads(ws.blobs.get(oid)))


def measured_budgets(ws: Workspace, version: int) -> tuple[float | None, float | None]:
    """(latency p50 ms, size MB) from the export report, when the export passed its parity check."""
    rep = export_report(ws, version)
    if rep is None:
        return None, None
    if not rep["parity"]["passed"]:
        raise GateError(
            f"model version {version}'s ONNX export failed its parity check "
            f"({rep['parity']['matched_share']:.1%} of boxes reproduced)",
            fix="re-export it, or report the model and torch/onnxruntime versions",
        )
    return float(rep["latency_ms"]["p50"]), float(rep["size_mb"])
