"""COCO box metrics with pycocotools, on :class:`~visionloop.types.Detections`.

The numbers are pycocotools' own: the ground truth is built as an in-memory
COCO dataset (image ids ``1..N`` in the given order, category id = class index
+ 1, ``iscrowd`` from the crowd flags, ``area`` = box area), the predictions go
through ``COCO.loadRes`` and ``COCOeval(..., "bbox")`` does the rest. Nothing is
printed: pycocotools' chatter is swallowed.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visionloop.errors import DataError
from visionloop.evaluate.checks import check_pairs
from visionloop.types import Detections, FloatArray

#: Names of ``EvalResult.stats``, in pycocotools' ``COCOeval.stats`` order.
STAT_NAMES: tuple[str, ...] = (
    "map50_95",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "ar1",
    "ar10",
    "ar100",
    "ar_small",
    "ar_medium",
    "ar_large",
)

_AREA_ALL = 0  # index of area range "all" in COCOeval.params.areaRng
_MAXDET_100 = 2  # index of maxDets=100 in COCOeval.params.maxDets
_DIGITS = 6


@dataclass(frozen=True, eq=False)
class EvalResult:
    """The outcome of :func:`coco_metrics`.

    ``metrics`` is the JSON-ready summary (floats rounded to 6 decimals)::

        {"map50_95", "map50", "map75", "ar100", "n_images",
         "per_class": {name: {"ap", "ap50", "recall", "n_gt"}}}

    where a class without (non-crowd) ground truth has ``None`` for its
    ``ap``/``ap50``/``recall`` and is left out of the means, as pycocotools does.

    The raw pieces: ``stats`` are pycocotools' 12 summary values unrounded
    (names in :data:`STAT_NAMES`; ``-1`` where an area range has no ground
    truth), ``precision`` is ``COCOeval.eval["precision"]`` of shape
    (T IoUs, R recall thresholds, K classes, A area ranges, M max-dets) with -1
    for absent classes, ``recall`` is ``COCOeval.eval["recall"]`` (T, K, A, M).
    """

    metrics: dict[str, Any]
    stats: tuple[float, ...]
    precision: FloatArray
    recall: FloatArray
    recall_thresholds: FloatArray
    iou_thresholds: FloatArray
    classes: tuple[str, ...]

    def precision_at(self, iou: float = 0.5) -> FloatArray:
        """Precision per recall threshold and class, shape (R, K), at IoU ``iou``
        (one of ``iou_thresholds``), area "all", 100 detections per image; -1
        columns for classes without ground truth."""
        matches = np.flatnonzero(np.isclose(self.iou_thresholds, iou))
        if matches.size == 0:
            known = ", ".join(f"{t:.2f}" for t in self.iou_thresholds)
            raise ValueError(f"IoU {iou} is not one of the evaluated thresholds ({known})")
        return np.array(self.precision[int(matches[0]), :, :, _AREA_ALL, _MAXDET_100])


def coco_metrics(
    ground_truth: Sequence[Detections],
    predictions: Sequence[Detections],
    classes: Sequence[str],
    image_sizes: Sequence[tuple[int, int]],
) -> EvalResult:
    """COCO box AP/AR of ``predictions`` against ``ground_truth`` (one entry per
    image, same order; ``image_sizes`` are ``(width, height)``).

    Predictions need confidences. No predictions at all gives zeros. Raises
    :class:`~visionloop.errors.DataError` when no image has a non-crowd
    ground-truth box (there is nothing to measure against) and ``ValueError``
    for inputs that break the contract (lengths, class ids, missing scores).
    """
    n_images = len(ground_truth)
    if len(predictions) != n_images or len(image_sizes) != n_images:
        raise ValueError(
            f"ground_truth, predictions and image_sizes differ in length "
            f"({n_images}, {len(predictions)}, {len(image_sizes)}); give one entry per image"
        )
    n_classes = len(classes)
    check_pairs(ground_truth, predictions, n_classes)
    n_gt = np.zeros(n_classes, dtype=np.int64)
    for gt in ground_truth:
        n_gt += np.bincount(gt.class_id[~gt.is_crowd], minlength=n_classes)
    if n_gt.sum() == 0:
        raise DataError(
            f"no ground-truth boxes to evaluate against: none of the {n_images} images has a non-crowd box",
            where="the evaluation split",
            fix="evaluate on a dataset version whose split has labeled images",
        )

    gt_dataset = _gt_dataset(ground_truth, classes, image_sizes)
    results = _results(predictions)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results) if results else _empty_results(coco_gt)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()

    precision = np.asarray(evaluator.eval["precision"], dtype=np.float64)
    recall = np.asarray(evaluator.eval["recall"], dtype=np.float64)
    stats = tuple(float(s) for s in evaluator.stats)
    per_class: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(classes):
        per_class[name] = {
            "ap": _mean_valid(precision[:, :, k, _AREA_ALL, _MAXDET_100]),
            "ap50": _mean_valid(precision[0, :, k, _AREA_ALL, _MAXDET_100]),
            "recall": _mean_valid(recall[:, k, _AREA_ALL, _MAXDET_100]),
            "n_gt": int(n_gt[k]),
        }
    named = dict(zip(STAT_NAMES, stats, strict=True))
    metrics: dict[str, Any] = {
        "map50_95": round(named["map50_95"], _DIGITS),
        "map50": round(named["map50"], _DIGITS),
        "map75": round(named["map75"], _DIGITS),
        "ar100": round(named["ar100"], _DIGITS),
        "n_images": n_images,
        "per_class": per_class,
    }
    return EvalResult(
        metrics=metrics,
        stats=stats,
        precision=precision,
        recall=recall,
        recall_thresholds=np.asarray(evaluator.params.recThrs, dtype=np.float64),
        iou_thresholds=np.asarray(evaluator.params.iouThrs, dtype=np.float64),
        classes=tuple(classes),
    )


def _gt_dataset(
    ground_truth: Sequence[Detections], classes: Sequence[str], image_sizes: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    images = [
        {"id": i + 1, "width": int(w), "height": int(h), "file_name": f"{i + 1}"}
        for i, (w, h) in enumerate(image_sizes)
    ]
    annotations: list[dict[str, Any]] = []
    for i, gt in enumerate(ground_truth):
        for box, cls, crowd in zip(gt.xyxy.tolist(), gt.class_id.tolist(), gt.is_crowd.tolist(), strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    # ids start at 1: COCOeval treats a matched id of 0 as "unmatched"
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": cls + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _results(predictions: Sequence[Detections]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, pred in enumerate(predictions):
        if not len(pred):
            continue
        assert pred.confidence is not None  # checked in _check
        for box, cls, score in zip(
            pred.xyxy.tolist(), pred.class_id.tolist(), pred.confidence.tolist(), strict=True
        ):
            out.append(
                {
                    "image_id": i + 1,
                    "category_id": cls + 1,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "score": score,
                }
            )
    return out


def _empty_results(coco_gt: Any) -> Any:
    # loadRes cannot take an empty list (it looks at anns[0]); an empty result
    # set built the same way makes COCOeval report zeros, as it should.
    res = COCO()
    res.dataset = {
        "images": list(coco_gt.dataset["images"]),
        "annotations": [],
        "categories": list(coco_gt.dataset["categories"]),
    }
    res.createIndex()
    return res


def _mean_valid(values: FloatArray) -> float | None:
    valid = values[values > -1]
    return round(float(np.mean(valid)), _DIGITS) if valid.size else None
