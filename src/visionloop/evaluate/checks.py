"""Input checks shared by the evaluators (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

from visionloop.types import Detections


def check_pairs(
    ground_truth: Sequence[Detections], predictions: Sequence[Detections], n_classes: int
) -> None:
    """Class ids in range and confidences on predictions, image by image; ``ValueError`` otherwise."""
    for i, (gt, pred) in enumerate(zip(ground_truth, predictions, strict=True)):
        for kind, det in (("ground truth", gt), ("predictions", pred)):
            if len(det) and (det.class_id.min() < 0 or det.class_id.max() >= n_classes):
                raise ValueError(f"{kind} of image {i} has a class id outside 0..{n_classes - 1}")
        if len(pred) and pred.confidence is None:
            raise ValueError(f"predictions of image {i} have no confidence scores")
