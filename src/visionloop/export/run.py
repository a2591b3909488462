"""``visionloop export``: a model version → ONNX, with parity and latency recorded for its gates."""

from __future__ import annotations

import json
from typing import Any

from visionloop.data.imaging import load_rgb
from visionloop.data.versions import load_manifest, resolve
from visionloop.errors import GateError
from visionloop.export.onnx import (
    OPSET,
    compare,
    export_onnx,
    latency_ms,
    run_session,
    run_torch,
    session,
    to_input,
)
from visionloop.workspace import Workspace


def export_model(
    ws: Workspace, ref: str | int, *, parity_images: int = 20, min_match: float = 0.99
) -> dict[str, Any]:
    """Export model version ``ref`` to ONNX; check parity with PyTorch on validation images of its
    dataset version; measure CPU latency and size; store the model and the report as artifacts."""
    from visionloop.evaluate.runner import load_model
    from visionloop.registry.versions import add_artifacts

    model, mv = load_model(ws, ref)
    data = export_onnx(model, mv.imgsz)
    sess = session(data)
    version = resolve(ws, mv.dataset_version_id)
    items = [e for e in load_manifest(ws, version)["items"] if e[2] == "val"][:parity_images]
    boxes = matched = 0
    score_diff = 0.0
    for oid, *_ in items:
        x, _scale = to_input(load_rgb(ws.blobs.get(oid)), mv.imgsz)
        c = compare(run_torch(model, x), run_session(sess, x))
        boxes, matched = boxes + c["boxes"], matched + c["matched"]
        score_diff = max(score_diff, c["max_score_diff"])
    share = matched / boxes if boxes else 1.0
    report = {
        "format": "onnx",
        "opset": OPSET,
        "input": [3, mv.imgsz, mv.imgsz],
        "size_mb": round(len(data) / 2**20, 3),
        "latency_ms": latency_ms(sess, mv.imgsz),
        "parity": {
            "images": len(items),
            "boxes": boxes,
            "matched": matched,
            "matched_share": round(share, 4),
            "max_score_diff": round(score_diff, 6),
            "passed": share >= min_match and score_diff <= 0.01,
        },
    }
    onnx_oid = ws.blobs.put_bytes(data)
    report_oid = ws.blobs.put_bytes(json.dumps(report, indent=1).encode())
    add_artifacts(ws, mv.version, {"model.onnx": onnx_oid, "export.json": report_oid})
    return {
        "model_version": mv.version,
        "artifacts": {"model.onnx": onnx_oid, "export.json": report_oid},
        **report,
    }


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
