"""Plots: PNG files that exist, decode, have a sane size and follow their input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionloop.evaluate.metrics import EvalResult, coco_metrics
from visionloop.evaluate.plots import plot_confusion_matrix, plot_pr_curves
from visionloop.types import Detections

CLASSES = ["RBC", "WBC", "Platelets"]


def _result(miss_every: int) -> EvalResult:
    """Ground truth on 6 images; predictions find all but every ``miss_every``-th box."""
    rng = np.random.default_rng(7)
    gts, preds = [], []
    for _ in range(6):
        xy = rng.uniform(0, 300, (5, 2))
        boxes = np.hstack([xy, xy + rng.uniform(20, 90, (5, 2))])
        cls = np.array([0, 0, 1, 1, 2])
        gts.append(Detections(boxes, cls))
        keep = np.arange(5) % miss_every != 0
        preds.append(Detections(boxes[keep] + 2.0, cls[keep], rng.uniform(0.3, 1.0, int(keep.sum()))))
    return coco_metrics(gts, preds, CLASSES, [(400, 400)] * 6)


def _check_png(path: Path) -> np.ndarray:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert 400 <= image.width <= 4000 and 400 <= image.height <= 4000
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 5  # not a blank canvas
    return pixels


def test_pr_curves(tmp_path: Path) -> None:
    a = plot_pr_curves(_result(miss_every=2), CLASSES, tmp_path / "a" / "pr.png")
    b = plot_pr_curves(_result(miss_every=5), CLASSES, tmp_path / "b" / "pr.png")
    assert a == tmp_path / "a" / "pr.png"
    pa, pb = _check_png(a), _check_png(b)
    assert pa.shape != pb.shape or not np.array_equal(pa, pb)
    assert [p.name for p in a.parent.iterdir()] == ["pr.png"]  # no temp file left behind


def test_pr_curves_same_input_same_bytes(tmp_path: Path) -> None:
    result = _result(miss_every=3)
    one = plot_pr_curves(result, CLASSES, tmp_path / "one.png").read_bytes()
    two = plot_pr_curves(result, CLASSES, tmp_path / "two.png").read_bytes()
    assert one == two


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_plot(tmp_path: Path, normalize: bool) -> None:
    m1 = np.array([[30, 2, 1, 5], [3, 20, 0, 4], [0, 1, 12, 9], [6, 2, 7, 0]])
    m2 = np.array([[5, 20, 1, 5], [3, 2, 0, 40], [9, 1, 2, 9], [0, 0, 0, 0]])
    a = plot_confusion_matrix(m1, CLASSES, tmp_path / "m1.png", normalize=normalize)
    b = plot_confusion_matrix(m2, CLASSES, tmp_path / "m2.png", normalize=normalize)
    pa, pb = _check_png(a), _check_png(b)
    assert pa.shape != pb.shape or not np.array_equal(pa, pb)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.png", "m2.png"]


def test_confusion_matrix_plot_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "cm.png"
    path.write_bytes(b"old")
    plot_confusion_matrix(np.eye(4, dtype=int), CLASSES, path)
    _check_png(path)


def test_shape_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"3 classes need \(4, 4\)"):
        plot_confusion_matrix(np.zeros((3, 3)), CLASSES, tmp_path / "x.png")
    with pytest.raises(ValueError, match="the result has 3 classes"):
        plot_pr_curves(_result(2), CLASSES[:2], tmp_path / "y.png")
    assert list(tmp_path.iterdir()) == []
