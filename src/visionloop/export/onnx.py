"""ONNX export of a detector, its parity with PyTorch, and its ONNX Runtime CPU latency.

The exported graph takes one image as a float32 CHW tensor in [0, 1] of exactly
``imgsz × imgsz`` (the model's own input size: the caller resizes, stretching, as
the model itself would) and returns ``boxes`` (xyxy pixels of that input),
``scores`` and ``labels`` (class id + 1). torchvision's legacy exporter (TorchScript
tracing, opset 17) handles the detection post-processing, NMS included.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visionloop.evaluate.confusion import box_iou
from visionloop.export.contract import detections, run_session
from visionloop.types import Detections

OPSET = 17


def export_onnx(model: torch.nn.Module, imgsz: int) -> bytes:
    """The ONNX bytes of ``model`` for ``imgsz × imgsz`` inputs."""
    model = model.eval().cpu()
    example = torch.rand(3, imgsz, imgsz)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints in torchvision's post-processing
        path = Path(tmp) / "model.onnx"
        torch.onnx.export(
            model,
            ([example],),
            str(path),
            opset_version=OPSET,
            dynamo=False,
            input_names=["image"],
            output_names=["boxes", "scores", "labels"],
        )
        return path.read_bytes()


@torch.inference_mode()
def run_torch(model: torch.nn.Module, x: np.ndarray) -> Detections:
    r = model.eval()([torch.from_numpy(x)])[0]
    return detections(r["boxes"].numpy(), r["scores"].numpy(), r["labels"].numpy())


def compare(
    ref: Detections, got: Detections, *, min_score: float = 0.05, iou: float = 0.99
) -> dict[str, Any]:
    """Parity of two detection sets on the same input: the share of ``ref``'s boxes above
    ``min_score`` that ``got`` reproduces (same class, IoU ≥ ``iou``) and the largest score gap."""
    assert ref.confidence is not None and got.confidence is not None
    r, g = ref[ref.confidence >= min_score], got[got.confidence >= min_score * 0.5]
    if len(r) == 0:
        return {"boxes": 0, "matched": 0, "max_score_diff": 0.0}
    assert r.confidence is not None and g.confidence is not None
    matched, diff = 0, 0.0
    ious = box_iou(r.xyxy, g.xyxy) if len(g) else np.zeros((len(r), 0))
    for i in range(len(r)):
        ok = (
            np.nonzero((ious[i] >= iou) & (g.class_id == r.class_id[i]))[0]
            if len(g)
            else np.zeros(0, np.int64)
        )
        if len(ok):
            matched += 1
            diff = max(diff, float(np.min(np.abs(g.confidence[ok] - r.confidence[i]))))
    return {"boxes": len(r), "matched": matched, "max_score_diff": diff}


def latency_ms(sess: Any, imgsz: int, runs: int = 30, warmup: int = 3) -> dict[str, float]:
    """ONNX Runtime CPU latency of one image: p50 and p95 in milliseconds."""
    x = np.random.default_rng(0).random((3, imgsz, imgsz), dtype=np.float32)
    for _ in range(warmup):
        run_session(sess, x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run_session(sess, x)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "p50": round(statistics.median(times), 2),
        "p95": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2),
    }
