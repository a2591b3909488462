"""Training data: the items of one split of a dataset version, as tensors.

Images are decoded once (EXIF orientation applied), shrunk so the longer side is
at most ``imgsz`` (the models resize again, so nothing is lost but time), and
kept in memory as uint8; augmentation runs per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from sqlalchemy import select
from torch.utils.data import Dataset
from torchvision import tv_tensors

from visionloop.data import labels as labelset
from visionloop.data.imaging import load_rgb
from visionloop.data.versions import VersionInfo, load_manifest
from visionloop.store import schema
from visionloop.types import Detections
from visionloop.workspace import Workspace


@dataclass(frozen=True)
class Sample:
    name: str
    image: np.ndarray  # HWC uint8, resized
    scale: float  # resized / original
    original_size: tuple[int, int]  # (width, height)
    truth: Detections  # in resized pixels


def load_split(
    ws: Workspace, version: VersionInfo, split: str, imgsz: int, progress: Callable[[int], None] | None = None
) -> tuple[list[Sample], list[str]]:
    """Decode the ``split`` items of ``version``; returns samples and the version's classes."""
    manifest = load_manifest(ws, version)
    classes: list[str] = list(manifest["classes"])
    entries = [e for e in manifest["items"] if e[2] == split]
    loids = list({e[1] for e in entries})
    texts: dict[str, str] = {}
    with ws.engine.connect() as conn:
        for i in range(0, len(loids), 500):
            q = select(schema.labels.c.oid, schema.labels.c.boxes).where(
                schema.labels.c.oid.in_(loids[i : i + 500])
            )
            texts.update({str(r[0]): str(r[1]) for r in conn.execute(q)})
    samples = []
    for oid, loid, _split, name in entries:
        rgb = load_rgb(ws.blobs.get(oid))
        w, h = rgb.size
        scale = min(1.0, imgsz / max(w, h))
        if scale < 1.0:
            rgb = rgb.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
        boxes = labelset.parse(texts[loid])
        truth = Detections.from_records(
            [{"box": [v * scale for v in b[:4]], "class": b[4], "crowd": b[5]} for b in boxes], classes
        )
        samples.append(Sample(name, np.array(rgb), scale, (w, h), truth))
        if progress:
            progress(1)
    return samples, classes


class DetectionDataset(Dataset[tuple[torch.Tensor, dict[str, Any]]]):
    """Samples → (CHW float image, torchvision target); crowd boxes are left out of training."""

    def __init__(self, samples: Sequence[Sample], transform: Callable[..., Any]) -> None:
        self.samples = samples
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        s = self.samples[index]
        keep = ~s.truth.is_crowd
        image = tv_tensors.Image(torch.from_numpy(s.image).permute(2, 0, 1).contiguous())
        h, w = s.image.shape[:2]
        target = {
            "boxes": tv_tensors.BoundingBoxes(
                torch.as_tensor(s.truth.xyxy[keep], dtype=torch.float32), format="XYXY", canvas_size=(h, w)
            ),
            "labels": torch.as_tensor(s.truth.class_id[keep] + 1, dtype=torch.int64),
        }
        image, target = self.transform(image, target)
        return image, {"boxes": target["boxes"].as_subclass(torch.Tensor), "labels": target["labels"]}


def collate(
    batch: list[tuple[torch.Tensor, dict[str, Any]]],
) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
