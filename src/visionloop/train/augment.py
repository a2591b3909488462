"""Box-aware augmentation presets (torchvision.transforms.v2).

Each preset maps ``(image tv_tensors.Image uint8, target with tv_tensors.BoundingBoxes)``
to the same; boxes move, scale and get clipped with the image, and boxes that
become too small are removed.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision.transforms import v2

from visionloop.errors import UsageError


def _finish() -> list[Any]:
    return [
        v2.ClampBoundingBoxes(),
        v2.SanitizeBoundingBoxes(min_size=2.0),
        v2.ToDtype(torch.float32, scale=True),
    ]


def build_augment(preset: str, train: bool) -> v2.Compose:
    """The transform for ``preset`` (``none``, ``light``, ``default``, ``heavy``); eval = ``none``."""
    if preset not in PRESETS:
        raise UsageError(f"unknown augmentation preset {preset!r}", fix=f"choose one of {', '.join(PRESETS)}")
    steps: list[Any] = []
    if train and preset == "light":
        steps = [v2.RandomHorizontalFlip()]
    elif train and preset == "default":
        steps = [
            v2.RandomPhotometricDistort(p=0.5),
            v2.RandomZoomOut(fill=114, side_range=(1.0, 1.6), p=0.3),
            v2.RandomIoUCrop(sampler_options=[0.3, 0.5, 0.7, 0.9, 1.0]),
            v2.RandomHorizontalFlip(),
        ]
    elif train and preset == "heavy":
        steps = [
            v2.RandomPhotometricDistort(p=0.8),
            v2.RandomZoomOut(fill=114, side_range=(1.0, 2.5), p=0.5),
            v2.RandomIoUCrop(),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomApply([v2.GaussianBlur(5)], p=0.2),
        ]
    return v2.Compose([*steps, *_finish()])


PRESETS = ("none", "light", "default", "heavy")
