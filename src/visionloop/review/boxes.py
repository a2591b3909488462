"""A reviewer's boxes, checked (pure): known classes, finite numbers, inside the image, not empty."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from visionloop.data.validate import Box
from visionloop.errors import DataError, UsageError

BOX_SHAPE = '[{"class": "name", "box": [x1, y1, x2, y2]}, …] in pixels of the image'


def check_boxes(
    boxes: object,
    classes: Sequence[str],
    width: int,
    height: int,
    *,
    tolerance: float = 2.0,
    where: str = "the boxes",
) -> list[Box]:
    """Canonical boxes from a reviewer's ``[{"class", "box": [x1, y1, x2, y2]}]``.

    A box may overshoot the image by ``tolerance`` pixels and is then clipped to it; after
    clipping it must have x1 < x2 and y1 < y2. The first problem raises :class:`DataError`
    (:class:`UsageError` when ``boxes`` is not a list at all) naming the box."""
    if not isinstance(boxes, list):
        raise UsageError(
            f"the boxes must be a list, not {type(boxes).__name__}", where=where, fix=f"send {BOX_SHAPE}"
        )
    out: list[Box] = []
    for i, rec in enumerate(boxes):
        here = f"{where}, box {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get("class"), str) or "box" not in rec:
            raise DataError(
                "a box must be an object with a class name and a box", where=here, fix=f"send {BOX_SHAPE}"
            )
        cls, xyxy = rec["class"], rec["box"]
        if cls not in classes:
            raise DataError(
                f"the class {cls!r} is not one of the workspace's classes",
                where=here,
                fix=f"use one of {', '.join(classes)}" if classes else "add classes to the workspace first",
            )
        out.append((*_coords(xyxy, width, height, tolerance, here), cls, bool(rec.get("crowd", False))))
    return out


def _coords(
    xyxy: Any, width: int, height: int, tolerance: float, where: str
) -> tuple[float, float, float, float]:
    numbers = isinstance(xyxy, list | tuple) and len(xyxy) == 4
    if not numbers or any(isinstance(v, bool) or not isinstance(v, int | float) for v in xyxy):
        raise DataError(
            f"the box {xyxy!r} is not four numbers", where=where, fix="give [x1, y1, x2, y2] in pixels"
        )
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise DataError(
            f"the box {xyxy!r} has a coordinate that is not finite", where=where, fix="give finite pixels"
        )
    for v, side in ((x1, width), (x2, width), (y1, height), (y2, height)):
        if v < -tolerance or v > side + tolerance:
            raise DataError(
                f"the box {xyxy!r} reaches outside the {width}×{height} image by more than {tolerance:g} px",
                where=where,
                fix="keep the box inside the image",
            )
    x1, x2 = min(max(x1, 0.0), float(width)), min(max(x2, 0.0), float(width))
    y1, y2 = min(max(y1, 0.0), float(height)), min(max(y2, 0.0), float(height))
    if not (round(x1, 2) < round(x2, 2) and round(y1, 2) < round(y2, 2)):  # stored to 0.01 px
        raise DataError(
            f"the box {xyxy!r} is empty: it needs x1 < x2 and y1 < y2",
            where=where,
            fix="give the top-left corner first, then the bottom-right one",
        )
    return x1, y1, x2, y2


def records(boxes: Sequence[Box]) -> list[dict[str, Any]]:
    """Boxes as ``[{"class", "box"}]`` (``"crowd": true`` where set), the shape the queue shows."""
    out: list[dict[str, Any]] = []
    for x1, y1, x2, y2, cls, crowd in boxes:
        rec: dict[str, Any] = {"class": cls, "box": [x1, y1, x2, y2]}
        if crowd:
            rec["crowd"] = True
        out.append(rec)
    return out
