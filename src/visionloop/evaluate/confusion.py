"""The detection confusion matrix (numpy only: no torch on this path).

``matrix[true, predicted]`` counts objects over K classes plus *background*
(index K)::

                    predicted 0 … K-1      predicted background
    true 0 … K-1    matched pairs          missed objects (false negatives)
    background      false positives        always 0

Matching per image, predictions with score ≥ ``score_threshold`` only, each
pass greedy by descending score, each prediction taking the unmatched box of
highest IoU ≥ ``iou``:

1. same-class ground truth — so a prediction mAP counts as a true positive
   lands on the diagonal;
2. crowd boxes (ignored regions, any class): a prediction covering one by
   intersection-over-prediction-area ≥ ``iou`` (pycocotools' rule) is dropped;
3. ground truth of another class (a confusion);
4. otherwise the prediction is a false positive (background row).

Unmatched non-crowd ground truth is missed (background column); crowd boxes are
never counted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from visionloop.evaluate.checks import check_pairs
from visionloop.types import BoolArray, Detections, FloatArray, IntArray


def confusion_matrix(
    ground_truth: Sequence[Detections],
    predictions: Sequence[Detections],
    n_classes: int,
    *,
    iou: float = 0.5,
    score_threshold: float = 0.25,
) -> IntArray:
    """Counts of (true class, predicted class) over all images, shape
    (K+1, K+1) with background last; see the module docstring for the rules."""
    if len(ground_truth) != len(predictions):
        raise ValueError(
            f"ground_truth has {len(ground_truth)} images and predictions {len(predictions)}; "
            "give one entry per image"
        )
    bg = n_classes
    matrix = np.zeros((n_classes + 1, n_classes + 1), dtype=np.int64)
    check_pairs(ground_truth, predictions, n_classes)
    for gt, pred in zip(ground_truth, predictions, strict=True):
        _add_image(matrix, gt, pred, bg, iou, score_threshold)
    return matrix


def _add_image(
    matrix: IntArray, gt: Detections, pred: Detections, bg: int, iou: float, score_threshold: float
) -> None:
    crowd = gt.is_crowd
    gt_boxes, gt_cls = gt.xyxy[~crowd], gt.class_id[~crowd]
    if len(pred):
        assert pred.confidence is not None
        keep = pred.confidence >= score_threshold
        # stable sort: equal scores keep their given order, as in pycocotools
        order = np.argsort(-pred.confidence[keep], kind="mergesort")
        boxes, cls = pred.xyxy[keep][order], pred.class_id[keep][order]
    else:
        boxes, cls = np.zeros((0, 4)), np.zeros(0, dtype=np.int64)

    ious = box_iou(boxes, gt_boxes)
    gt_taken = np.zeros(len(gt_boxes), dtype=bool)
    # per prediction: index of its matched ground truth, -1 none (yet), -2 ignored (crowd)
    match = np.full(len(boxes), -1, dtype=np.int64)
    _greedy(ious >= iou, ious, cls[:, None] == gt_cls[None, :], gt_taken, match)
    if crowd.any() and len(boxes):
        covered = (box_ioa(boxes, gt.xyxy[crowd]) >= iou).any(axis=1)
        match[(match == -1) & covered] = -2
    _greedy(ious >= iou, ious, np.ones_like(ious, dtype=bool), gt_taken, match)

    for p, g in enumerate(match.tolist()):
        if g >= 0:
            matrix[gt_cls[g], cls[p]] += 1
        elif g == -1:
            matrix[bg, cls[p]] += 1
    matrix[:bg, bg] += np.bincount(gt_cls[~gt_taken], minlength=bg)


def _greedy(
    hit: BoolArray, ious: FloatArray, allowed: BoolArray, gt_taken: BoolArray, match: IntArray
) -> None:
    """Match still-unmatched predictions (in order) to free ground truth."""
    for p in np.flatnonzero(match == -1):
        ok = hit[p] & allowed[p] & ~gt_taken
        if ok.any():
            g = int(np.argmax(np.where(ok, ious[p], -1.0)))
            gt_taken[g] = True
            match[p] = g


def box_iou(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise intersection over union of ``xyxy`` boxes, shape (len(a), len(b));
    0 where the union is empty."""
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_ioa(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pairwise intersection over the area of the ``a`` box (how much of ``a``
    lies inside ``b``), shape (len(a), len(b)); 0 for an empty ``a``."""
    inter = _intersection(a, b)
    area = np.broadcast_to(_area(a)[:, None], inter.shape)
    ioa: FloatArray = np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)
    return ioa


def _area(boxes: FloatArray) -> FloatArray:
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    return wh[:, 0] * wh[:, 1]


def _intersection(a: FloatArray, b: FloatArray) -> FloatArray:
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh: FloatArray = np.clip(bottom_right - top_left, 0, None)
    inter: FloatArray = wh[..., 0] * wh[..., 1]
    return inter
