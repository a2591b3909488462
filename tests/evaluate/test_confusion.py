"""confusion_matrix: a table of small cases, K = 2 classes, background = index 2."""

from __future__ import annotations

import numpy as np
import pytest

from visionloop.evaluate.confusion import box_iou, confusion_matrix
from visionloop.types import Detections

BG = 2
A = (10.0, 10.0, 50.0, 50.0)
A_NEAR = (12.0, 10.0, 52.0, 50.0)  # IoU with A ≈ 0.905
A_FAR = (30.0, 10.0, 70.0, 50.0)  # IoU with A = 1/3
B = (100.0, 100.0, 160.0, 140.0)
CROWD = (200.0, 0.0, 300.0, 100.0)
IN_CROWD = (210.0, 10.0, 250.0, 60.0)  # entirely inside CROWD, IoU with it only 0.2


def gt(*boxes: tuple[tuple[float, ...], int] | tuple[tuple[float, ...], int, bool]) -> Detections:
    if not boxes:
        return Detections.empty()
    return Detections(
        [b[0] for b in boxes], [b[1] for b in boxes], crowd=[len(b) > 2 and bool(b[2]) for b in boxes]
    )


def pred(*boxes: tuple[tuple[float, ...], int, float]) -> Detections:
    if not boxes:
        return Detections(np.zeros((0, 4)), np.zeros(0, dtype=np.int64), np.zeros(0))
    return Detections([b[0] for b in boxes], [b[1] for b in boxes], [b[2] for b in boxes])


CASES = {
    "true positive": (gt((A, 0)), pred((A_NEAR, 0, 0.9)), {(0, 0): 1}),
    "false positive → background row": (gt(), pred((B, 1, 0.9)), {(BG, 1): 1}),
    "missed → background column": (gt((B, 1)), pred(), {(1, BG): 1}),
    "wrong class": (gt((A, 0)), pred((A, 1, 0.9)), {(0, 1): 1}),
    "IoU below threshold: a miss and a false positive": (
        gt((A, 0)),
        pred((A_FAR, 0, 0.9)),
        {(0, BG): 1, (BG, 0): 1},
    ),
    "crowd ignored: prediction inside it is not counted": (
        gt((CROWD, 0, True)),
        pred((IN_CROWD, 0, 0.9)),
        {},
    ),
    "crowd ignored: an unpredicted crowd is not a miss": (
        gt((CROWD, 1, True), (A, 0)),
        pred((A, 0, 0.9)),
        {(0, 0): 1},
    ),
    "crowd of another class still ignores the region": (gt((CROWD, 0, True)), pred((IN_CROWD, 1, 0.9)), {}),
    "below score threshold is dropped": (gt((A, 0)), pred((A, 0, 0.2)), {(0, BG): 1}),
    "at score threshold is kept": (gt((A, 0)), pred((A, 0, 0.25)), {(0, 0): 1}),
    "duplicate: higher score matches, the other is a false positive": (
        gt((A, 0)),
        pred((A_NEAR, 0, 0.5), (A, 0, 0.9)),
        {(0, 0): 1, (BG, 0): 1},
    ),
    "same class wins over a higher-scored wrong class": (
        gt((A, 0)),
        pred((A, 1, 0.9), (A_NEAR, 0, 0.5)),
        {(0, 0): 1, (BG, 1): 1},
    ),
    "two objects, two classes, both found": (
        gt((A, 0), (B, 1)),
        pred((B, 1, 0.7), (A, 0, 0.8)),
        {(0, 0): 1, (1, 1): 1},
    ),
    "prediction takes the box it overlaps most": (
        # the first prediction overlaps both (IoU 0.67 and 0.90) and must take the second,
        # leaving the first for the next prediction (IoU 0.6 with it, 0.33 with the other)
        gt(((10, 10, 50, 50), 0), ((20, 10, 60, 50), 0)),
        pred(((18, 10, 58, 50), 0, 0.9), ((0, 10, 40, 50), 0, 0.5)),
        {(0, 0): 2},
    ),
}


@pytest.mark.parametrize(("ground_truth", "predictions", "cells"), CASES.values(), ids=CASES.keys())
def test_cases(ground_truth: Detections, predictions: Detections, cells: dict[tuple[int, int], int]) -> None:
    expected = np.zeros((3, 3), dtype=np.int64)
    for (r, c), count in cells.items():
        expected[r, c] = count
    np.testing.assert_array_equal(confusion_matrix([ground_truth], [predictions], 2), expected)


def test_sums_over_images_and_counts_every_object_once() -> None:
    gts = [gt((A, 0), (B, 1)), gt((B, 0)), gt()]
    preds = [pred((A, 0, 0.9)), pred((B, 1, 0.8)), pred((A, 1, 0.4))]
    m = confusion_matrix(gts, preds, 2)
    assert m.tolist() == [[1, 1, 0], [0, 0, 1], [0, 1, 0]]
    assert m[:2].sum() == 3  # every non-crowd ground-truth object is in exactly one cell of its row
    assert m[:, :2].sum() == 3  # every kept prediction is in exactly one cell of its column


def test_iou_parameter() -> None:
    # A vs A_FAR: IoU 1/3 — a match at iou=0.3, not at the default 0.5
    m = confusion_matrix([gt((A, 0))], [pred((A_FAR, 0, 0.9))], 2, iou=0.3)
    assert m.tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_box_iou() -> None:
    ious = box_iou(np.array([A, A, (0, 0, 0, 0)]), np.array([A, A_FAR]))
    np.testing.assert_allclose(ious, [[1.0, 1 / 3], [1.0, 1 / 3], [0.0, 0.0]])


def test_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError, match="ground_truth has 1 images and predictions 0"):
        confusion_matrix([gt()], [], 2)
    with pytest.raises(ValueError, match=r"class id outside 0\.\.1"):
        confusion_matrix([gt((A, 2))], [pred()], 2)
    with pytest.raises(ValueError, match="no confidence scores"):
        confusion_matrix([gt()], [Detections([A], [0])], 2)
