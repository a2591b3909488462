"""The served model: a verified bundle, its ONNX Runtime session, warmed before use, swappable atomically."""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from visionloop.errors import DataError
from visionloop.export.bundle import Bundle, load_bundle
from visionloop.export.contract import run_session, to_input


@dataclass(frozen=True)
class Loaded:
    bundle: Bundle
    session: Any
    imgsz: int

    @property
    def version(self) -> int:
        return self.bundle.version


def inference_slots() -> int:
    """How many requests may run the model at once: two per CPU this process may use.

    Each runs on one thread (see :func:`_session`); the second one per CPU is ready to start while the
    event loop answers the first one's client and reads the next request, so no CPU waits between
    requests (measured on 2 CPUs: about 10% more images per second than one per CPU)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 2 * cpus


def _session(path: str) -> Any:
    """An ONNX Runtime CPU session that runs each request on one thread.

    Requests run side by side (:func:`inference_slots`) instead of one at a time on every CPU:
    measured on 2 CPUs (docs/BENCHMARKS.md, Serving), that serves about 40% more images per second
    under concurrent load and does not collapse when other work takes a CPU, as ONNX Runtime's
    spinning intra-op threads do; a lone request is about 10% slower."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def load(path: Path | str) -> Loaded:
    """Verify a bundle, open its ONNX model and warm it with one inference."""
    bundle = load_bundle(path)
    imgsz = int(bundle.manifest["input"]["width"])
    sess = _session(str(bundle.file("onnx")))
    run_session(sess, np.zeros((3, imgsz, imgsz), np.float32))
    return Loaded(bundle, sess, imgsz)


def decode(data: bytes) -> Image.Image:
    """An uploaded image as RGB with EXIF orientation applied; :class:`DataError` when it is not one."""
    try:
        im: Image.Image = Image.open(io.BytesIO(data))
        return ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise DataError(
            f"the upload is not a decodable image ({type(exc).__name__})",
            fix="send JPEG, PNG, BMP, WEBP, TIFF or GIF bytes",
        ) from None


class Holder:
    """The model being served; ``swap`` replaces it in one reference assignment, so a request that
    started on the old model finishes on it and no request ever sees a half-loaded one."""

    def __init__(self, loaded: Loaded) -> None:
        self._current = loaded
        self._lock = threading.Lock()

    @property
    def current(self) -> Loaded:
        return self._current

    def swap(self, path: Path | str) -> Loaded:
        loaded = load(path)  # verify and warm first: a bundle that fails never goes live
        with self._lock:
            self._current = loaded
        return loaded


def detect(loaded: Loaded, rgb: Image.Image, score_threshold: float) -> list[dict[str, Any]]:
    """Detections above ``score_threshold`` in original image pixels, with class names."""
    x, (sx, sy) = to_input(rgb, loaded.imgsz)
    d = run_session(loaded.session, x)
    classes = loaded.bundle.classes
    out = []
    assert d.confidence is not None
    for box, cls, score in zip(d.xyxy, d.class_id, d.confidence, strict=True):
        if score >= score_threshold:
            out.append(
                {
                    "class": classes[int(cls)],
                    "class_id": int(cls),
                    "score": round(float(score), 4),
                    "box": [
                        round(float(box[0] * sx), 1),
                        round(float(box[1] * sy), 1),
                        round(float(box[2] * sx), 1),
                        round(float(box[3] * sy), 1),
                    ],
                }
            )
    return out
