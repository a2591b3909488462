"""coco_metrics: equal to pycocotools driven by hand from JSON files, plus known answers."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from visionloop.errors import DataError
from visionloop.evaluate.metrics import STAT_NAMES, coco_metrics
from visionloop.types import Detections

CLASSES = ["cat", "dog", "bird"]


def _random_case(seed: int) -> tuple[list[Detections], list[Detections], list[tuple[int, int]]]:
    """Images of mixed sizes; boxes from small to large; some crowd boxes; some
    images without ground truth, some without predictions; jittered, dropped,
    relabelled predictions plus false positives."""
    rng = np.random.default_rng(seed)
    gts: list[Detections] = []
    preds: list[Detections] = []
    sizes: list[tuple[int, int]] = []
    for i in range(14):
        w, h = int(rng.integers(200, 800)), int(rng.integers(200, 600))
        sizes.append((w, h))
        n = 0 if i % 5 == 2 else int(rng.integers(1, 9))
        wh = np.exp(rng.uniform(np.log(6), np.log(180), (n, 2)))  # small, medium and large areas
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([w, h]) - wh).clip(1)
        boxes = np.hstack([xy, xy + wh])
        cls = rng.integers(0, 3, n)
        crowd = rng.random(n) < 0.12
        gts.append(Detections(boxes, cls, crowd=crowd))
        if i % 4 == 3:
            preds.append(Detections.empty())
            continue
        keep = rng.random(n) < 0.8
        jitter = rng.normal(0, 0.12, (int(keep.sum()), 4)) * np.tile(wh[keep], 2)
        p_boxes = boxes[keep] + jitter
        p_cls = np.where(rng.random(int(keep.sum())) < 0.15, rng.integers(0, 3, int(keep.sum())), cls[keep])
        m = int(rng.integers(0, 4))
        f_xy = rng.uniform(0, min(w, h) - 60, (m, 2))
        f_boxes = np.hstack([f_xy, f_xy + rng.uniform(8, 60, (m, 2))])
        all_boxes = np.vstack([p_boxes, f_boxes])
        all_cls = np.concatenate([p_cls, rng.integers(0, 3, m)])
        preds.append(Detections(all_boxes, all_cls, rng.uniform(0.01, 1.0, len(all_boxes))))
    return gts, preds, sizes


def _pycocotools_by_hand(
    tmp_path: Path, gts: list[Detections], preds: list[Detections], sizes: list[tuple[int, int]]
) -> COCOeval:
    """The reference: COCO JSON files on disk, read back by pycocotools itself."""
    images = [
        {"id": i + 1, "width": w, "height": h, "file_name": f"{i}.jpg"} for i, (w, h) in enumerate(sizes)
    ]
    annotations: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        for (x1, y1, x2, y2), c, crowd in zip(
            gt.xyxy.tolist(), gt.class_id.tolist(), gt.is_crowd.tolist(), strict=True
        ):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": c + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
        if len(pred):
            assert pred.confidence is not None
            for (x1, y1, x2, y2), c, s in zip(
                pred.xyxy.tolist(), pred.class_id.tolist(), pred.confidence.tolist(), strict=True
            ):
                results.append(
                    {"image_id": i + 1, "category_id": c + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}
                )
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    dt_path.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(dt_path)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_pycocotools_driven_by_hand(tmp_path: Path, seed: int) -> None:
    gts, preds, sizes = _random_case(seed)
    assert any(len(g) == 0 for g in gts) and any(len(p) == 0 for p in preds)
    assert any(g.is_crowd.any() for g in gts)

    result = coco_metrics(gts, preds, CLASSES, sizes)
    ref = _pycocotools_by_hand(tmp_path, gts, preds, sizes)

    assert len(result.stats) == len(STAT_NAMES) == 12
    for name, ours, theirs in zip(STAT_NAMES, result.stats, ref.stats, strict=True):
        assert ours == pytest.approx(float(theirs), abs=1e-9), name
    assert 0 < ref.stats[0] < 1  # a case with something to get right
    np.testing.assert_allclose(result.precision, ref.eval["precision"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.recall, ref.eval["recall"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.recall_thresholds, ref.params.recThrs, rtol=0, atol=0)

    m = result.metrics
    assert set(m) == {"map50_95", "map50", "map75", "ar100", "n_images", "per_class"}
    assert m["n_images"] == len(gts)
    for key, index in (("map50_95", 0), ("map50", 1), ("map75", 2), ("ar100", 8)):
        assert m[key] == round(float(ref.stats[index]), 6), key
    for k, name in enumerate(CLASSES):
        p_all = ref.eval["precision"][:, :, k, 0, -1]
        p_50 = ref.eval["precision"][0, :, k, 0, -1]
        r_all = ref.eval["recall"][:, k, 0, -1]
        entry = m["per_class"][name]
        assert entry["ap"] == round(float(np.mean(p_all[p_all > -1])), 6)
        assert entry["ap50"] == round(float(np.mean(p_50[p_50 > -1])), 6)
        assert entry["recall"] == round(float(np.mean(r_all[r_all > -1])), 6)
        assert entry["n_gt"] == sum(int(((g.class_id == k) & ~g.is_crowd).sum()) for g in gts)
    # the reduced copy the PR plot uses is the IoU 0.5 / area all / 100 dets slice
    np.testing.assert_array_equal(result.precision_at(0.5), ref.eval["precision"][0, :, :, 0, 2])


def _boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


GT = [
    Detections(_boxes((10, 10, 60, 60), (100, 100, 180, 160)), [0, 1]),
    Detections(_boxes((20, 30, 120, 90)), [0]),
]
SIZES = [(200, 200), (200, 200)]


def test_perfect_predictions_score_one() -> None:
    preds = [Detections(g.xyxy, g.class_id, np.full(len(g), 0.9)) for g in GT]
    m = coco_metrics(GT, preds, CLASSES, SIZES).metrics
    assert (m["map50_95"], m["map50"], m["map75"], m["ar100"]) == (1.0, 1.0, 1.0, 1.0)
    assert m["per_class"]["cat"] == {"ap": 1.0, "ap50": 1.0, "recall": 1.0, "n_gt": 2}
    assert m["per_class"]["bird"] == {"ap": None, "ap50": None, "recall": None, "n_gt": 0}


def test_no_predictions_score_zero() -> None:
    result = coco_metrics(GT, [Detections.empty(), Detections.empty()], CLASSES, SIZES)
    m = result.metrics
    assert (m["map50_95"], m["map50"], m["map75"], m["ar100"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["per_class"]["dog"] == {"ap": 0.0, "ap50": 0.0, "recall": 0.0, "n_gt": 1}
    assert result.precision.shape == (10, 101, 3, 4, 3)


def test_one_class_found_one_missed() -> None:
    preds = [
        Detections(_boxes((10, 10, 60, 60)), [0], [0.8]),
        Detections(_boxes((20, 30, 120, 90)), [0], [0.7]),
    ]
    m = coco_metrics(GT, preds, CLASSES, SIZES).metrics
    assert m["per_class"]["cat"]["ap"] == 1.0
    assert m["per_class"]["dog"]["ap"] == 0.0
    assert m["map50_95"] == 0.5  # the class without ground truth is not in the mean


def test_prediction_on_crowd_region_is_not_a_false_positive() -> None:
    person = _boxes((10, 10, 50, 90))
    crowd = _boxes((100, 20, 190, 120))
    on_crowd = _boxes((110, 30, 150, 100))  # inside the crowd region, scored higher than the hit
    preds = [Detections(np.vstack([on_crowd, person]), [0, 0], [0.95, 0.6])]
    with_crowd = [Detections(np.vstack([person, crowd]), [0, 0], crowd=[False, True])]
    assert coco_metrics(with_crowd, preds, CLASSES, [(200, 150)]).metrics["map50"] == 1.0
    # honesty check: without the crowd region, the same prediction is a false positive
    without = [Detections(person, [0])]
    assert coco_metrics(without, preds, CLASSES, [(200, 150)]).metrics["map50"] < 1.0


def test_empty_ground_truth_is_a_data_error() -> None:
    preds = [Detections(_boxes((1, 1, 5, 5)), [0], [0.5])]
    with pytest.raises(DataError, match="no ground-truth boxes to evaluate against: none of the 1 images"):
        coco_metrics([Detections.empty()], preds, CLASSES, [(10, 10)])
    only_crowd = [Detections(_boxes((1, 1, 5, 5)), [0], crowd=[True])]
    with pytest.raises(DataError, match="non-crowd"):
        coco_metrics(only_crowd, preds, CLASSES, [(10, 10)])


@pytest.mark.parametrize(
    ("gts", "preds", "sizes", "message"),
    [
        (GT, GT[:1], SIZES, r"differ in length \(2, 1, 2\)"),
        (
            GT,
            [Detections.empty(), Detections(_boxes((1, 1, 2, 2)), [0])],
            SIZES,
            "image 1 have no confidence",
        ),
        (GT, [Detections.empty(), Detections(_boxes((1, 1, 2, 2)), [3], [0.5])], SIZES, "outside 0..2"),
    ],
)
def test_contract_violations(
    gts: list[Detections], preds: list[Detections], sizes: list[tuple[int, int]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        coco_metrics(gts, preds, CLASSES, sizes)


def test_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    gts, preds, sizes = _random_case(3)
    coco_metrics(gts, preds, CLASSES, sizes)
    assert capsys.readouterr().out == ""
