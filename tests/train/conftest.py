"""A tiny synthetic dataset version for training tests (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs the `train` extra (torch, torchvision)")

from visionloop.data.ingest import import_dataset
from visionloop.data.synth import generate
from visionloop.data.versions import snapshot
from visionloop.train.config import TrainConfig

TINY = {"model": "ssdlite", "epochs": 2, "imgsz": 96, "batch_size": 6, "lr": 0.002, "augment": "light"}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "day"
    generate(out, images=20, seed=5, size=96)
    return out


@pytest.fixture
def tiny_ws(ws, tiny_data: Path):
    import_dataset(ws, tiny_data)
    snapshot(ws, "tiny", keep_splits=True)
    return ws


@pytest.fixture
def tiny_cfg() -> TrainConfig:
    return TrainConfig(**TINY)
