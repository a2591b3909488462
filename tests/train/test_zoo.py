from __future__ import annotations

import pytest
import torch

from visionloop.errors import UsageError
from visionloop.train.zoo import ZOO, build_model


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_architecture_trains_and_predicts(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, 3, 64)
    images = [torch.rand(3, 64, 80), torch.rand(3, 50, 64)]
    targets = [
        {"boxes": torch.tensor([[5.0, 5.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
        {
            "boxes": torch.tensor([[10.0, 2.0, 20.0, 12.0], [1.0, 1.0, 9.0, 9.0]]),
            "labels": torch.tensor([2, 3]),
        },
    ]
    model.train()
    losses = model(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model(images)
    assert len(out) == 2 and set(out[0]) >= {"boxes", "labels", "scores"}


def test_unknown_model_and_no_classes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown model 'yolo9000'"):
        build_model("yolo9000", 3, 64)
    with pytest.raises(UsageError, match="at least one class"):
        build_model("ssdlite", 0, 64)
