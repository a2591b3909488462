from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from visionloop.errors import UsageError
from visionloop.train.augment import PRESETS, build_augment


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_keep_boxes_inside_and_move_them_with_the_image(preset: str) -> None:
    torch.manual_seed(0)
    image = tv_tensors.Image(torch.zeros(3, 60, 80, dtype=torch.uint8))
    image[:, 10:30, 20:50] = 255
    boxes = tv_tensors.BoundingBoxes(
        torch.tensor([[20.0, 10.0, 50.0, 30.0]]), format="XYXY", canvas_size=(60, 80)
    )
    for _ in range(10):
        out_img, out = build_augment(preset, train=True)(image, {"boxes": boxes, "labels": torch.tensor([1])})
        assert out_img.dtype == torch.float32 and out_img.max() <= 1.0
        h, w = out_img.shape[-2:]
        b = out["boxes"]
        assert len(b) == len(out["labels"])
        if len(b):
            assert (b[:, 0] >= 0).all() and (b[:, 2] <= w).all() and (b[:, 3] <= h).all()


def test_eval_transform_changes_nothing_but_dtype() -> None:
    image = tv_tensors.Image(torch.full((3, 8, 8), 255, dtype=torch.uint8))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[1.0, 1.0, 5.0, 5.0]]), format="XYXY", canvas_size=(8, 8))
    out_img, out = build_augment("heavy", train=False)(image, {"boxes": boxes, "labels": torch.tensor([1])})
    assert torch.equal(out["boxes"], boxes) and out_img.max() == 1.0


def test_unknown_preset() -> None:
    with pytest.raises(UsageError, match="unknown augmentation preset 'wild'"):
        build_augment("wild", train=True)
