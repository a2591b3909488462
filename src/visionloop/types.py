"""Shared value types. :class:`Detections` is THE in-memory type for boxes.

Boxes are ``xyxy`` in pixels of the (EXIF-oriented) image, class ids index the
workspace's class list, confidences are ``None`` for ground truth. Formats,
training, evaluation, serving and monitoring all exchange this one type.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _as_float(a: Any, n_cols: int | None = None) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if n_cols is not None:
        arr = arr.reshape(-1, n_cols) if arr.size else np.zeros((0, n_cols), dtype=np.float64)
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes on one image: ``xyxy`` (N, 4) pixels, ``class_id`` (N,), optional
    ``confidence`` (N,) and ``crowd`` (N,) flags (COCO ``iscrowd`` / VOC
    ``difficult``: kept, ignored by evaluation)."""

    xyxy: FloatArray
    class_id: IntArray
    confidence: FloatArray | None = None
    crowd: BoolArray | None = None

    def __post_init__(self) -> None:
        xyxy = _as_float(self.xyxy, 4)
        n = len(xyxy)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if class_id.shape != (n,):
            raise ValueError(f"class_id has {class_id.shape[0]} entries for {n} boxes")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "class_id", class_id)
        if self.confidence is not None:
            conf = _as_float(self.confidence).reshape(-1)
            if conf.shape != (n,):
                raise ValueError(f"confidence has {conf.shape[0]} entries for {n} boxes")
            object.__setattr__(self, "confidence", conf)
        crowd = np.zeros(n, dtype=bool) if self.crowd is None else np.asarray(self.crowd, bool).reshape(-1)
        if crowd.shape != (n,):
            raise ValueError(f"crowd has {crowd.shape[0]} entries for {n} boxes")
        object.__setattr__(self, "crowd", crowd)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def __getitem__(self, index: Any) -> Detections:
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)
        conf = None if self.confidence is None else self.confidence[idx]
        return Detections(self.xyxy[idx], self.class_id[idx], conf, self.is_crowd[idx])

    @property
    def is_crowd(self) -> BoolArray:
        """The crowd flags (always an array after construction)."""
        assert self.crowd is not None
        return self.crowd

    @property
    def area(self) -> FloatArray:
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def equals(self, other: Detections, atol: float = 1e-6) -> bool:
        """Same boxes in the same order (coordinates within ``atol``)."""
        return (
            len(self) == len(other)
            and bool(np.allclose(self.xyxy, other.xyxy, atol=atol))
            and bool(np.array_equal(self.class_id, other.class_id))
            and bool(np.array_equal(self.is_crowd, other.is_crowd))
        )

    def to_records(self, classes: Sequence[str]) -> list[dict[str, Any]]:
        """Plain dicts with the class *name* (for JSON and label revisions)."""
        out: list[dict[str, Any]] = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "box": [round(float(v), 4) for v in self.xyxy[i]],
                "class": classes[int(self.class_id[i])],
            }
            if self.confidence is not None:
                rec["score"] = round(float(self.confidence[i]), 6)
            if self.is_crowd[i]:
                rec["crowd"] = True
            out.append(rec)
        return out

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]], classes: Sequence[str]) -> Detections:
        """Inverse of :meth:`to_records`; class names must be in ``classes``."""
        index = {name: i for i, name in enumerate(classes)}
        if not records:
            return cls.empty()
        xyxy = np.array([r["box"] for r in records], dtype=np.float64)
        class_id = np.array([index[r["class"]] for r in records], dtype=np.int64)
        conf = None
        if all("score" in r for r in records):
            conf = np.array([r["score"] for r in records], dtype=np.float64)
        crowd = np.array([bool(r.get("crowd", False)) for r in records])
        return cls(xyxy, class_id, conf, crowd)


@dataclass(frozen=True)
class ImageInfo:
    """Decoded facts about an image blob (after EXIF orientation)."""

    width: int
    height: int
    format: str
    mode: str
    orientation: int = 1
