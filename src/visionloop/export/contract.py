"""The input/output contract of an exported model — numpy and Pillow only (the serving side uses it).

Input: one RGB image stretched to ``imgsz × imgsz`` (bilinear), float32 CHW in [0, 1].
Output: ``boxes`` xyxy in input pixels, ``scores``, ``labels`` (class index + 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from visionloop.types import Detections


def to_input(rgb: Image.Image, imgsz: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The model input for an RGB image and the (x, y) factors that map its boxes back."""
    w, h = rgb.size
    arr = np.asarray(rgb.resize((imgsz, imgsz), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1)), (w / imgsz, h / imgsz)


def detections(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> Detections:
    """A detector's raw output as :class:`Detections`: label 0 is dropped (one-stage heads score that
    logit too, but it is never a class) and class ids lose the background offset."""
    keep = labels > 0
    return Detections(
        boxes[keep].astype(np.float64), labels[keep].astype(np.int64) - 1, scores[keep].astype(np.float64)
    )


def run_session(sess: Any, x: np.ndarray) -> Detections:
    """Detections of one preprocessed input."""
    boxes, scores, labels = sess.run(None, {sess.get_inputs()[0].name: x})
    return detections(boxes, scores, labels)


def session(data: bytes | str) -> Any:
    """An ONNX Runtime CPU session for model bytes or a model file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
